//! lcus: device-side frames (to be written).

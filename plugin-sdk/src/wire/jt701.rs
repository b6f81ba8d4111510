//! jt701: device-side frames (to be written).

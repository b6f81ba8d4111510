//! toledo: device-side frames (to be written).

//! rdm6300: device-side frames (to be written).

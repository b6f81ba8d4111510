//! chafon: device-side frames (to be written).

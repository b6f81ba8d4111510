//! yaohua: device-side frames (to be written).

//! hikvision: device-side frames (to be written).

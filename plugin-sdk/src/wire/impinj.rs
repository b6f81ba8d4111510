//! impinj: device-side frames (to be written).

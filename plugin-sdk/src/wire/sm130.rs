//! sm130: device-side frames (to be written).

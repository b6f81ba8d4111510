//! modbus: device-side frames (to be written).

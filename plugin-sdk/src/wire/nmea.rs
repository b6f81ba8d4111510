//! nmea: device-side frames (to be written).

//! mt_sics: device-side frames (to be written).

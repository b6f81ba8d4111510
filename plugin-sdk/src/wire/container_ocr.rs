//! container_ocr: device-side frames (to be written).

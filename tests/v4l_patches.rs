//! The vendored v4l crate's changes (vendor/v4l/PATCHES.md): what a driver answers, and a
//! device path from the configuration, give values or errors, never a panic (which would
//! abort the service).
#![cfg(feature = "v4l2")]

use v4l::capability::Capabilities;
use v4l::format::{Colorspace, FieldOrder, Format, Quantization, TransferFunction};
use v4l::v4l_sys::{v4l2_capability, v4l2_pix_format, v4l2_pix_format__bindgen_ty_1};

#[test]
fn unknown_values_in_a_drivers_format_read_as_any_and_default() {
    let answer = v4l2_pix_format {
        width: 640,
        height: 480,
        pixelformat: u32::from_le_bytes(*b"GREY"),
        field: 99,
        bytesperline: 640,
        sizeimage: 640 * 480,
        colorspace: 999,
        priv_: 0,
        flags: 0,
        __bindgen_anon_1: v4l2_pix_format__bindgen_ty_1 { ycbcr_enc: 0 },
        quantization: 77,
        xfer_func: 55,
    };
    let format = Format::from(answer);
    assert_eq!((format.width, format.height, format.stride), (640, 480, 640));
    // The crate's enums have no PartialEq: compare their discriminants.
    assert_eq!(format.field_order as u32, FieldOrder::Any as u32);
    assert_eq!(format.colorspace as u32, Colorspace::Default as u32);
    assert_eq!(format.quantization as u32, Quantization::Default as u32);
    assert_eq!(format.transfer as u32, TransferFunction::Default as u32);
}

#[test]
fn a_drivers_name_that_is_not_utf8_is_read_lossily() {
    let mut card = [0u8; 32];
    card[..4].copy_from_slice(&[b'c', 0xff, b'a', b'm']);
    let answer = v4l2_capability {
        driver: *b"uvcvideo\0\0\0\0\0\0\0\0",
        card,
        bus_info: [0; 32],
        version: 0,
        capabilities: 0,
        device_caps: 0,
        reserved: [0; 3],
    };
    let caps = Capabilities::from(answer);
    assert_eq!((caps.driver.as_str(), caps.card.as_str()), ("uvcvideo", "c\u{fffd}am"));
}

#[test]
fn a_device_path_with_a_nul_byte_is_an_error() {
    let err = v4l::Device::with_path("/dev/vid\0eo0").err().expect("a path with a NUL byte is refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

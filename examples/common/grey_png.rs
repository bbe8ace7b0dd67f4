//! 8-bit greyscale PNGs, as the real X-ray data under `../shared/data/` comes, for the examples
//! that report on it.

use std::path::Path;

/// An 8-bit greyscale PNG: its pixels and (width, height).
pub fn read_grey(path: &Path) -> anyhow::Result<(Vec<u8>, usize, usize)> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut reader = png::Decoder::new(file).read_info()?;
    let info = reader.info();
    let (w, h) = (info.width as usize, info.height as usize);
    anyhow::ensure!(
        (info.color_type, info.bit_depth) == (png::ColorType::Grayscale, png::BitDepth::Eight),
        "{}: not 8-bit greyscale",
        path.display()
    );
    let mut pixels = vec![0; reader.output_buffer_size().unwrap_or(w * h)];
    reader.next_frame(&mut pixels)?;
    pixels.truncate(w * h);
    Ok((pixels, w, h))
}

/// An 8-bit greyscale PNG as a frame of full scale 255.
pub fn read_frame(path: &Path) -> anyhow::Result<wiretrace::frame::Frame> {
    let (pixels, w, h) = read_grey(path)?;
    let mut frame = wiretrace::frame::Frame::with_size(w, h);
    frame.maxval = 255;
    frame.pixels.iter_mut().zip(&pixels).for_each(|(p, &v)| *p = u16::from(v));
    Ok(frame)
}

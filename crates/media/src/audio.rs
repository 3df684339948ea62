//! Audio in and out: PCM frames through [`AudioSource`] and [`AudioSink`].
//!
//! Frames are mono signed 16-bit PCM at the source's or sink's sample rate
//! (8 kHz for G.711, 48 kHz for Opus); a 20 ms frame is 160 or 960
//! samples. Applications plug their own audio in by implementing the two
//! traits. Built in:
//!
//! - [`Silence`] and [`Tone`] (a sine at a frequency);
//! - [`WavSource`] and [`WavRecorder`]: RIFF/WAVE PCM 16-bit mono playback
//!   and recording ([`read_wav`] and [`write_wav`] underneath); the file
//!   helpers are the only I/O in this crate;
//! - [`echo`]: a sink and a source sharing a buffer, so what is heard is
//!   played back;
//! - [`goertzel_power`] and [`ToneDetector`], to check in tests that a tone
//!   made it through.

use std::collections::VecDeque;
use std::f64::consts::PI;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// 8 kHz, the G.711 rate.
pub const RATE_8K: u32 = 8000;
/// 48 kHz, the Opus rate.
pub const RATE_48K: u32 = 48000;

/// Samples in a 20 ms frame at `rate`.
pub fn frame_len(rate: u32) -> usize {
    (rate / 50) as usize
}

/// Produces PCM frames.
pub trait AudioSource: Send {
    /// Sample rate in Hz.
    fn sample_rate(&self) -> u32;
    /// Fills `frame`; returns how many samples were written. Fewer than
    /// `frame.len()` means the source ended (the rest is left as it was).
    fn read(&mut self, frame: &mut [i16]) -> usize;
}

/// Consumes PCM frames.
pub trait AudioSink: Send {
    /// Sample rate in Hz.
    fn sample_rate(&self) -> u32;
    /// Takes one frame.
    fn write(&mut self, frame: &[i16]);
}

/// Endless silence.
#[derive(Debug, Clone, Copy)]
pub struct Silence {
    rate: u32,
}

impl Silence {
    /// Silence at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        Silence { rate }
    }
}

impl AudioSource for Silence {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn read(&mut self, frame: &mut [i16]) -> usize {
        frame.fill(0);
        frame.len()
    }
}

/// A sine wave, endless.
#[derive(Debug, Clone)]
pub struct Tone {
    rate: u32,
    frequency: f64,
    amplitude: f64,
    phase: f64,
}

impl Tone {
    /// A `frequency` Hz sine at `rate` Hz with peak `amplitude` (0..=32767).
    pub fn new(rate: u32, frequency: f64, amplitude: i16) -> Self {
        Tone { rate: rate.max(1), frequency, amplitude: f64::from(amplitude), phase: 0.0 }
    }
}

impl AudioSource for Tone {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn read(&mut self, frame: &mut [i16]) -> usize {
        let step = 2.0 * PI * self.frequency / f64::from(self.rate);
        for s in frame.iter_mut() {
            *s = (self.amplitude * self.phase.sin()).round().clamp(-32768.0, 32767.0) as i16;
            self.phase = (self.phase + step) % (2.0 * PI);
        }
        frame.len()
    }
}

/// A sink that drops everything.
#[derive(Debug, Clone, Copy)]
pub struct NullSink {
    rate: u32,
}

impl NullSink {
    /// A sink at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        NullSink { rate }
    }
}

impl AudioSink for NullSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn write(&mut self, _frame: &[i16]) {}
}

/// Why a WAV file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Not a RIFF/WAVE file, or truncated.
    #[error("not a RIFF/WAVE file: {0}")]
    Malformed(&'static str),
    /// A format other than PCM 16-bit mono.
    #[error("unsupported WAV format: tag {format}, {channels} channels, {bits} bits")]
    Unsupported {
        /// Format tag (1 = PCM).
        format: u16,
        /// Channels.
        channels: u16,
        /// Bits per sample.
        bits: u16,
    },
    /// Reading or writing the file failed.
    #[error("WAV file I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

/// Parses a RIFF/WAVE PCM 16-bit mono file: (sample rate, samples).
/// Unknown chunks are skipped; a truncated data chunk is read as far as it goes.
pub fn read_wav(bytes: &[u8]) -> Result<(u32, Vec<i16>), WavError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::Malformed("missing RIFF/WAVE header"));
    }
    let mut at: usize = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while let (Some(id), Some(len)) = (bytes.get(at..at.saturating_add(4)), le32(bytes, at.saturating_add(4))) {
        let start = at.saturating_add(8);
        let len = len as usize;
        let end = start.saturating_add(len).min(bytes.len());
        let body = bytes.get(start..end).unwrap_or_default();
        if id == b"fmt " {
            let f = (|| Some((le16(body, 0)?, le16(body, 2)?, le32(body, 4)?, le16(body, 14)?)))()
                .ok_or(WavError::Malformed("short fmt chunk"))?;
            format = Some(f);
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or(WavError::Malformed("data before fmt"))?;
            // 0xFFFE is WAVE_FORMAT_EXTENSIBLE; accepted when it is plain 16-bit mono.
            if !(tag == 1 || tag == 0xfffe) || channels != 1 || bits != 16 {
                return Err(WavError::Unsupported { format: tag, channels, bits });
            }
            let samples = body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
            return Ok((rate, samples));
        }
        // Chunks are padded to even length.
        at = start.saturating_add(len).saturating_add(len & 1);
    }
    Err(WavError::Malformed("no data chunk"))
}

/// Writes samples as a RIFF/WAVE PCM 16-bit mono file.
pub fn write_wav(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2).min(u32::MAX as usize - 36) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate.wrapping_mul(2)).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples.iter().take(data_len as usize / 2) {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Plays WAV samples, once or looped.
#[derive(Debug, Clone)]
pub struct WavSource {
    rate: u32,
    samples: Vec<i16>,
    pos: usize,
    looped: bool,
}

impl WavSource {
    /// Plays samples at `rate`.
    pub fn from_samples(rate: u32, samples: Vec<i16>) -> Self {
        WavSource { rate, samples, pos: 0, looped: false }
    }
    /// Parses a WAV file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WavError> {
        let (rate, samples) = read_wav(bytes)?;
        Ok(WavSource::from_samples(rate, samples))
    }
    /// Reads a WAV file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WavError> {
        WavSource::from_bytes(&std::fs::read(path)?)
    }
    /// Restarts at the beginning when the end is reached.
    pub fn looped(mut self, looped: bool) -> Self {
        self.looped = looped;
        self
    }
    /// Whether all samples were played (never for a looped source).
    pub fn finished(&self) -> bool {
        !self.looped && self.pos >= self.samples.len()
    }
}

impl AudioSource for WavSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn read(&mut self, frame: &mut [i16]) -> usize {
        let mut n = 0;
        while n < frame.len() {
            if self.pos >= self.samples.len() {
                if self.looped && !self.samples.is_empty() {
                    self.pos = 0;
                } else {
                    break;
                }
            }
            let take = (frame.len() - n).min(self.samples.len() - self.pos);
            if let (Some(dst), Some(src)) = (frame.get_mut(n..n + take), self.samples.get(self.pos..self.pos + take)) {
                dst.copy_from_slice(src);
            }
            n += take;
            self.pos += take;
        }
        n
    }
}

/// Records frames, to be saved as WAV.
#[derive(Debug, Clone, Default)]
pub struct WavRecorder {
    rate: u32,
    samples: Vec<i16>,
}

impl WavRecorder {
    /// A recorder at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        WavRecorder { rate, samples: Vec::new() }
    }
    /// The samples so far.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }
    /// The recording as WAV bytes.
    pub fn to_wav(&self) -> Vec<u8> {
        write_wav(self.rate, &self.samples)
    }
    /// Writes the recording to a WAV file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), WavError> {
        std::fs::write(path, self.to_wav())?;
        Ok(())
    }
}

impl AudioSink for WavRecorder {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn write(&mut self, frame: &[i16]) {
        self.samples.extend_from_slice(frame);
    }
}

type Shared = Arc<Mutex<VecDeque<i16>>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, VecDeque<i16>> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The sink half of [`echo`].
#[derive(Debug, Clone)]
pub struct EchoSink {
    rate: u32,
    buffer: Shared,
    limit: usize,
}

/// The source half of [`echo`]: plays what the sink took, silence when empty.
#[derive(Debug, Clone)]
pub struct EchoSource {
    rate: u32,
    buffer: Shared,
}

/// An echo: what [`EchoSink`] takes, [`EchoSource`] plays back. At most
/// one second is buffered (older audio is dropped).
pub fn echo(rate: u32) -> (EchoSink, EchoSource) {
    let buffer = Shared::default();
    (EchoSink { rate, buffer: buffer.clone(), limit: rate as usize }, EchoSource { rate, buffer })
}

impl AudioSink for EchoSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn write(&mut self, frame: &[i16]) {
        let mut b = lock(&self.buffer);
        b.extend(frame.iter().copied());
        let excess = b.len().saturating_sub(self.limit);
        b.drain(..excess);
    }
}

impl AudioSource for EchoSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn read(&mut self, frame: &mut [i16]) -> usize {
        let mut b = lock(&self.buffer);
        for s in frame.iter_mut() {
            *s = b.pop_front().unwrap_or(0);
        }
        frame.len()
    }
}

/// The Goertzel power of `frequency` in `samples`, normalised so that a
/// pure sine at that frequency gives about 1.0 and silence 0.0: the share
/// of the signal's energy at the frequency.
pub fn goertzel_power(samples: &[i16], rate: u32, frequency: f64) -> f64 {
    let n = samples.len();
    if n == 0 || rate == 0 {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * PI * frequency / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0;
    for &x in samples {
        let x = f64::from(x);
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power / (n as f64 * energy)
}

/// Detects a tone with the Goertzel algorithm.
#[derive(Debug, Clone, Copy)]
pub struct ToneDetector {
    /// Sample rate.
    pub rate: u32,
    /// Frequency looked for.
    pub frequency: f64,
    /// Share of energy at the frequency needed (0.5 by default).
    pub threshold: f64,
    /// Minimum RMS level, to ignore near-silence (100 by default).
    pub min_rms: f64,
}

impl ToneDetector {
    /// A detector of `frequency` at `rate`.
    pub fn new(rate: u32, frequency: f64) -> Self {
        ToneDetector { rate, frequency, threshold: 0.5, min_rms: 100.0 }
    }
    /// Whether `samples` hold the tone.
    pub fn detect(&self, samples: &[i16]) -> bool {
        if samples.is_empty() {
            return false;
        }
        let rms = (samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64).sqrt();
        rms >= self.min_rms && goertzel_power(samples, self.rate, self.frequency) >= self.threshold
    }
}

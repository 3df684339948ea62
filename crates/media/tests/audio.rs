//! Audio sources, sinks, WAV and the Goertzel detector.

use proptest::prelude::*;
use sipact_media::audio::*;

#[test]
fn silence_and_tone() {
    let mut f = [7i16; 160];
    assert_eq!(Silence::new(RATE_8K).read(&mut f), 160);
    assert!(f.iter().all(|&s| s == 0));
    let mut t = Tone::new(RATE_48K, 1000.0, 10000);
    let mut f = vec![0i16; frame_len(RATE_48K)];
    assert_eq!(f.len(), 960);
    t.read(&mut f);
    assert!(f.iter().all(|s| s.abs() <= 10000));
    assert!(f.iter().any(|s| s.abs() > 9900));
    assert!(ToneDetector::new(RATE_48K, 1000.0).detect(&f));
    assert!(!ToneDetector::new(RATE_48K, 1300.0).detect(&f));
    // Silence is never a tone.
    assert!(!ToneDetector::new(RATE_8K, 440.0).detect(&[0; 800]));
    assert_eq!(goertzel_power(&[], RATE_8K, 440.0), 0.0);
}

#[test]
fn goertzel_separates_dtmf_row_frequencies() {
    // 697 and 770 Hz (DTMF rows) are 73 Hz apart: 50 ms at 8 kHz resolves them.
    let mut t = Tone::new(RATE_8K, 697.0, 8000);
    let mut f = [0i16; 400];
    t.read(&mut f);
    assert!(goertzel_power(&f, RATE_8K, 697.0) > 0.9);
    assert!(goertzel_power(&f, RATE_8K, 770.0) < 0.1);
}

#[test]
fn wav_write_read_round_trip_and_playback() {
    let samples: Vec<i16> = (0..1000).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
    let bytes = write_wav(RATE_8K, &samples);
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(bytes.len(), 44 + 2000);
    assert_eq!(read_wav(&bytes).unwrap(), (RATE_8K, samples.clone()));
    let mut src = WavSource::from_bytes(&bytes).unwrap();
    let mut f = [0i16; 160];
    let mut played = Vec::new();
    loop {
        let n = src.read(&mut f);
        played.extend_from_slice(&f[..n]);
        if n < f.len() {
            break;
        }
    }
    assert_eq!(played, samples);
    assert!(src.finished());
    // Looped playback wraps around.
    let mut looped = WavSource::from_samples(RATE_8K, vec![1, 2, 3]).looped(true);
    let mut f = [0i16; 7];
    assert_eq!(looped.read(&mut f), 7);
    assert_eq!(f, [1, 2, 3, 1, 2, 3, 1]);
}

#[test]
fn wav_files_on_disk() {
    let path = std::env::temp_dir().join(format!("sipact-media-test-{}.wav", std::process::id()));
    let mut rec = WavRecorder::new(RATE_8K);
    let mut tone = Tone::new(RATE_8K, 440.0, 5000);
    let mut f = [0i16; 160];
    for _ in 0..10 {
        tone.read(&mut f);
        rec.write(&f);
    }
    rec.save(&path).unwrap();
    let mut src = WavSource::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let mut all = vec![0i16; 1600];
    assert_eq!(src.read(&mut all), 1600);
    assert_eq!(all, rec.samples());
    assert!(ToneDetector::new(RATE_8K, 440.0).detect(&all));
}

#[test]
fn wav_reader_skips_unknown_chunks_and_rejects_other_formats() {
    let mut bytes = write_wav(RATE_8K, &[1, -1]);
    // Insert an odd-length LIST chunk (padded) before "data".
    let list = [b"LIST".as_slice(), &3u32.to_le_bytes(), b"abc\0"].concat();
    bytes.splice(36..36, list);
    assert_eq!(read_wav(&bytes).unwrap(), (RATE_8K, vec![1, -1]));
    let mut stereo = write_wav(RATE_8K, &[0; 4]);
    stereo[22] = 2;
    assert!(matches!(read_wav(&stereo), Err(WavError::Unsupported { channels: 2, .. })));
    assert!(matches!(read_wav(b"RIFX"), Err(WavError::Malformed(_))));
    assert!(matches!(read_wav(&bytes[..40]), Err(WavError::Malformed(_))));
}

#[test]
fn echo_plays_back_what_it_hears() {
    let (mut sink, mut source) = echo(RATE_8K);
    sink.write(&[1, 2, 3]);
    let mut f = [9i16; 5];
    assert_eq!(source.read(&mut f), 5);
    assert_eq!(f, [1, 2, 3, 0, 0]);
    // At most one second is kept.
    sink.write(&vec![5; 9000]);
    let mut big = vec![0i16; 9000];
    source.read(&mut big);
    assert_eq!(big.iter().filter(|&&s| s == 5).count(), 8000);
}

proptest! {
    #[test]
    fn wav_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = read_wav(&bytes);
        let mut with_header = b"RIFF\0\0\0\0WAVE".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = read_wav(&with_header);
    }
}

//! `sipact demo`, the README's run command: exits 0 and shows every step.

use std::process::Command;

#[test]
fn demo_command_exits_zero_with_every_step() {
    let out = Command::new(env!("CARGO_BIN_EXE_sipact")).arg("demo").output().expect("run sipact demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("demo: every step happened"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    for section in ["== SIP ladder", "== Session timelines", "== Steps"] {
        assert!(stdout.contains(section), "{stdout}");
    }
}

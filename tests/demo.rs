//! The embedded demo runs every step: three user agents on 127.0.0.1, a
//! reliable 183, audio both ways, DTMF, hold/unhold, a followed blind
//! transfer, and everyone hanging up.

#[actix_rt::test]
async fn demo_every_step_happens() {
    let report = sipact::demo::run().await;
    let text = report.render();
    assert!(report.passed(), "{text}");
    assert!(report.steps.len() >= 9, "{text}");
    // The ladder shows the flow: the reliable 183, its PRACK, the REFER and NOTIFYs.
    for needle in ["INVITE", "183 INVITE", "PRACK", "INFO", "REFER", "NOTIFY", "BYE"] {
        assert!(report.ladder.contains(needle), "ladder lacks {needle}:\n{}", report.ladder);
    }
    for who in ["alice (to bob):", "bob (from alice):", "alice (to carol):", "carol (from alice):"] {
        assert!(report.timelines.contains(who), "{}", report.timelines);
    }
}

/// Prints the report (run with `--nocapture` to see it).
#[actix_rt::test]
async fn demo_report_renders() {
    let report = sipact::demo::run().await;
    println!("{}", report.render());
    assert!(report.render().contains("== SIP ladder"));
}

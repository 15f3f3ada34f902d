//! Mail delivery through a real local SMTP server (Python aiosmtpd, started
//! by the test; `pip install -r .ci/requirements.txt`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use notices::mail::{body_for, parse_smtp_url, send, subject_for, Mail, SmtpTarget};
use notices::*;

struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn start_sink() -> Sink {
    let check = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .output();
    match check {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "Python package aiosmtpd is not installed (needed for the SMTP test): \
             pip install -r .ci/requirements.txt\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run {} for the SMTP test server: {e}", python()),
    }
    let dir = tempfile::tempdir().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("smtp_sink.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the SMTP sink");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("SMTP sink did not print its port (got {line:?})")
    });
    Sink { child, port, dir }
}

fn wait_for(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no message arrived at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[tokio::test]
async fn sends_a_notice_through_a_local_smtp_server() {
    let sink = start_sink();
    let doc = sample_doc();
    let pdf = render_pdf(&doc).unwrap();
    let zip = pack_zip(&doc.notice_no, &pdf, "123456789", ZipEncryption::ZipCrypto).unwrap();
    let mail = Mail {
        from: "notices@example.jp".into(),
        to: "merchant@example.com".into(),
        subject: subject_for("【お支払通知書】{notice_no}", &doc.notice_no),
        body: body_for(&doc.notice_no, doc.payout_date, &doc.merchant_name),
        attachment_name: format!("{}.zip", doc.notice_no),
        attachment: zip.clone(),
    };
    send(&format!("smtp://127.0.0.1:{}", sink.port), &mail)
        .await
        .unwrap();

    let m = sink.dir.path().join("1");
    wait_for(&m.join("done"));
    assert_eq!(read(&m, "envelope_to.txt"), "merchant@example.com");
    assert_eq!(read(&m, "to.txt"), "merchant@example.com");
    assert_eq!(read(&m, "from.txt"), "notices@example.jp");
    assert_eq!(
        read(&m, "subject.txt"),
        "【お支払通知書】270212122-001-20191031"
    );
    let body = read(&m, "body.txt");
    assert!(body.contains("②新PAY切替Uペイ 様"), "{body}");
    assert!(body.contains("270212122-001-20191031"), "{body}");
    assert!(body.contains("2019年10月31日"), "{body}");
    assert!(
        !body.contains("123456789"),
        "the password must not be in the body"
    );
    assert_eq!(
        read(&m, "attachment_name.txt"),
        "270212122-001-20191031.zip"
    );
    assert_eq!(read(&m, "attachment_type.txt"), "application/zip");
    assert_eq!(std::fs::read(m.join("attachment.bin")).unwrap(), zip);
    let raw = std::fs::read(m.join("raw.eml")).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("123456789"));

    // A second message to the same server.
    let mut second = mail.clone();
    second.to = "other@example.com".into();
    send(&format!("smtp://127.0.0.1:{}/", sink.port), &second)
        .await
        .unwrap();
    wait_for(&sink.dir.path().join("2").join("done"));
    assert_eq!(
        read(&sink.dir.path().join("2"), "envelope_to.txt"),
        "other@example.com"
    );
}

#[tokio::test]
async fn unreachable_server_is_an_error() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mail = Mail {
        from: "notices@example.jp".into(),
        to: "merchant@example.com".into(),
        subject: "x".into(),
        body: "x".into(),
        attachment_name: "a.zip".into(),
        attachment: vec![1, 2, 3],
    };
    let err = send(&format!("smtp://127.0.0.1:{port}"), &mail)
        .await
        .unwrap_err();
    assert!(matches!(err, NoticeError::Mail(_)), "{err:?}");
    let err = send(
        "smtp://127.0.0.1:1",
        &Mail {
            to: "not an address".into(),
            ..mail
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("To"), "{err}");
}

#[test]
fn smtp_urls() {
    let t = |h: &str, p| SmtpTarget {
        host: h.into(),
        port: p,
    };
    assert_eq!(
        parse_smtp_url("smtp://localhost:2525").unwrap(),
        t("localhost", 2525)
    );
    assert_eq!(
        parse_smtp_url("smtp://relay.internal").unwrap(),
        t("relay.internal", 25)
    );
    assert_eq!(
        parse_smtp_url("smtp://[::1]:2525/").unwrap(),
        t("::1", 2525)
    );
    let e = parse_smtp_url("smtps://mail.example.jp:465")
        .unwrap_err()
        .to_string();
    assert!(e.contains("smtps") && e.contains("TLS"), "{e}");
    let e = parse_smtp_url("smtp://user:s3cret@host:25")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("s3cret"), "{e}");
    assert!(parse_smtp_url("http://host").is_err());
    assert!(parse_smtp_url("smtp://host:0").is_err());
    assert!(parse_smtp_url("smtp://host:99999").is_err());
    assert!(parse_smtp_url("smtp://:25").is_err());
}

#[test]
fn body_names_notice_and_date_only() {
    let b = body_for("270212122-001-20191031", d(2019, 10, 31), "②新PAY切替Uペイ");
    assert!(b.starts_with("②新PAY切替Uペイ 様\n"));
    assert!(b.contains("通知書No：270212122-001-20191031"));
    assert!(b.contains("お振込み予定日：2019年10月31日"));
    assert!(b.contains("数字9桁"));
    assert_eq!(
        subject_for("【お支払通知書】{notice_no}", "X-1"),
        "【お支払通知書】X-1"
    );
}

//! The encrypted ZIP: opened with the Rust zip reader and with 7-Zip.

mod common;

use std::io::Read;
use std::process::Command;

use common::*;
use notices::*;

const PW: &str = "123456789";

fn read_with_rust(zip_bytes: &[u8], name: &str, password: &[u8]) -> Result<Vec<u8>, String> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).map_err(|e| e.to_string())?;
    let mut file = archive
        .by_name_decrypt(name, password)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    file.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn names(zip_bytes: &[u8]) -> Vec<String> {
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    archive
        .file_names()
        .map(|s| s.unwrap().to_string())
        .collect()
}

fn roundtrip(enc: ZipEncryption) {
    let doc = sample_doc();
    let pdf = render_pdf(&doc).unwrap();
    let z = pack_zip(&doc.notice_no, &pdf, PW, enc).unwrap();
    assert_eq!(names(&z), vec!["270212122-001-20191031.pdf".to_string()]);
    let inner = read_with_rust(&z, "270212122-001-20191031.pdf", PW.as_bytes()).unwrap();
    assert_eq!(inner, pdf, "the PDF inside is the rendered PDF");
    assert_eq!(sha256_hex(&inner), sha256_hex(&pdf));
    // Wrong password: refused (ZipCrypto's 1-byte check lets 1 in 256 wrong
    // passwords through the header check; the CRC then fails on reading).
    for wrong in ["987654321", "123456780", "000000000", ""] {
        assert!(
            read_with_rust(&z, "270212122-001-20191031.pdf", wrong.as_bytes()).is_err(),
            "{enc:?}: wrong password {wrong:?} opened the archive"
        );
    }
    // The encryption is random (header / salt), the PDF inside is not.
    let z2 = pack_zip(&doc.notice_no, &pdf, PW, enc).unwrap();
    assert_ne!(z, z2);
    assert_eq!(
        read_with_rust(&z2, "270212122-001-20191031.pdf", PW.as_bytes()).unwrap(),
        pdf
    );
}

#[test]
fn zipcrypto_roundtrip_rust_reader() {
    roundtrip(ZipEncryption::ZipCrypto);
}

#[test]
fn aes256_roundtrip_rust_reader() {
    roundtrip(ZipEncryption::Aes256);
}

#[test]
fn default_is_zipcrypto() {
    assert_eq!(ZipEncryption::default(), ZipEncryption::ZipCrypto);
    assert_eq!(
        "aes256".parse::<ZipEncryption>().unwrap(),
        ZipEncryption::Aes256
    );
    assert_eq!(
        "zipcrypto".parse::<ZipEncryption>().unwrap(),
        ZipEncryption::ZipCrypto
    );
    assert!("rot13".parse::<ZipEncryption>().is_err());
}

fn seven_zip(args: &[&str], file: &std::path::Path) -> std::process::Output {
    require_tool("7z", "p7zip-full");
    Command::new("7z")
        .args(args)
        .arg(file)
        .output()
        .expect("run 7z")
}

fn check_with_7z(enc: ZipEncryption) {
    let doc = sample_doc();
    let pdf = render_pdf(&doc).unwrap();
    let z = pack_zip(&doc.notice_no, &pdf, PW, enc).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{}.zip", doc.notice_no));
    std::fs::write(&path, &z).unwrap();

    let ok = seven_zip(&["t", &format!("-p{PW}")], &path);
    assert!(
        ok.status.success(),
        "{enc:?}: 7z t with the right password failed:\n{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let listing = seven_zip(&["l", "-slt", &format!("-p{PW}")], &path);
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(
        listing.contains("Path = 270212122-001-20191031.pdf"),
        "{listing}"
    );
    assert!(listing.contains("Encrypted = +"), "{listing}");
    let want_method = match enc {
        ZipEncryption::ZipCrypto => "ZipCrypto",
        ZipEncryption::Aes256 => "AES-256",
    };
    assert!(
        listing.contains(want_method),
        "{enc:?}: method not {want_method}:\n{listing}"
    );

    let bad = seven_zip(&["t", "-p987654321"], &path);
    assert!(
        !bad.status.success(),
        "{enc:?}: 7z t with a wrong password succeeded"
    );

    // Extracted bytes are the PDF.
    let out = dir.path().join("out");
    let x = Command::new("7z")
        .args([
            "x",
            &format!("-p{PW}"),
            &format!("-o{}", out.display()),
            "-y",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(x.status.success());
    let extracted = std::fs::read(out.join("270212122-001-20191031.pdf")).unwrap();
    assert_eq!(extracted, pdf);
}

#[test]
fn zipcrypto_opens_with_7z() {
    check_with_7z(ZipEncryption::ZipCrypto);
}

#[test]
fn aes256_opens_with_7z() {
    check_with_7z(ZipEncryption::Aes256);
}

#[test]
fn bad_password_or_name_is_refused_without_echoing_it() {
    let pdf = b"%PDF-1.7 test".to_vec();
    for pw in [
        "12345678",
        "1234567890",
        "12345678a",
        "",
        "１２３４５６７８９",
    ] {
        let err =
            pack_zip("270212122-001-20191031", &pdf, pw, ZipEncryption::ZipCrypto).unwrap_err();
        assert!(matches!(err, NoticeError::BadPassword), "{pw:?}: {err:?}");
        if !pw.is_empty() {
            assert!(!err.to_string().contains(pw) && !format!("{err:?}").contains(pw));
        }
    }
    for no in ["../etc/passwd", "a/b", "", "x y"] {
        assert!(matches!(
            pack_zip(no, &pdf, PW, ZipEncryption::Aes256),
            Err(NoticeError::BadNoticeNo(_))
        ));
    }
}

#[test]
fn entry_time_is_the_payout_date() {
    let z = pack_zip(
        "270212122-001-20191031",
        b"%PDF",
        PW,
        ZipEncryption::ZipCrypto,
    )
    .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&z)).unwrap();
    let f = archive.by_index_raw(0).unwrap();
    let t = f.last_modified().unwrap();
    assert_eq!((t.year(), t.month(), t.day()), (2019, 10, 31));
}

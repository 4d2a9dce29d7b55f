//! The shipped templates (`templates/`): every one renders in both languages with its
//! documented sample, with the case number, the due time and a proper greeting; and
//! `load` names each problem an admin can make (syntax error, unknown variable, missing
//! language).

use std::path::{Path, PathBuf};

use casegate::templates::context::{Acknowledgement, TemplateContext, sample_context};
use casegate::templates::{LANGUAGES, Rendered, TemplateKind, Templates, load};

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

fn shipped() -> Templates {
    load(&shipped_dir()).unwrap_or_else(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        panic!("shipped templates do not load:\n{}", lines.join("\n"))
    })
}

fn render(t: &Templates, kind: TemplateKind, lang: &str) -> Rendered {
    t.render(kind, lang, &sample_context(kind, lang))
        .unwrap_or_else(|e| panic!("{kind} {lang}: {e}"))
}

/// The due time each kind shows, if any (from its sample).
fn due_time(kind: TemplateKind, lang: &str) -> Option<String> {
    let ctx = sample_context(kind, lang);
    [
        "first_response_due",
        "next_response_due",
        "response_due",
        "due",
    ]
    .iter()
    .find_map(|k| ctx.get(*k).and_then(|v| v.as_str()).map(str::to_string))
}

#[test]
fn every_template_renders_in_both_languages() {
    let t = shipped();
    for kind in TemplateKind::ALL {
        for lang in LANGUAGES {
            let r = render(&t, kind, lang);
            let all = format!("{}\n{}", r.subject, r.body);
            assert!(
                !r.subject.is_empty() && !r.subject.contains('\n'),
                "{kind} {lang}: {:?}",
                r.subject
            );
            assert!(
                all.contains("00001234"),
                "{kind} {lang}: no case number\n{all}"
            );
            if let Some(due) = due_time(kind, lang) {
                assert!(
                    r.body.contains(&due),
                    "{kind} {lang}: no due time {due}\n{}",
                    r.body
                );
            }
            assert!(
                r.body.ends_with('\n') && !r.body.ends_with("\n\n"),
                "{kind} {lang}: trailing blank lines"
            );
            assert!(
                !r.body.contains("\n\n\n"),
                "{kind} {lang}: double blank line\n{}",
                r.body
            );
            check_greeting(kind, lang, &r.body);
        }
    }
}

fn check_greeting(kind: TemplateKind, lang: &str, body: &str) {
    match lang {
        "en" => assert!(
            body.starts_with("Hello") || body.starts_with("Dear"),
            "{kind} en: greeting\n{body}"
        ),
        _ if kind.to_customer() => {
            assert!(body.contains("様"), "{kind} ja: no 様\n{body}");
            assert!(
                body.contains("お世話になっております") || body.contains("お問い合わせいただき"),
                "{kind} ja: greeting\n{body}"
            );
            assert!(
                body.contains("何卒よろしくお願いいたします。"),
                "{kind} ja: closing\n{body}"
            );
        }
        _ => assert!(
            body.contains("お疲れ様です"),
            "{kind} ja: internal greeting\n{body}"
        ),
    }
}

#[test]
fn acknowledgement_lists_what_the_product_team_needs() {
    let t = shipped();
    for lang in LANGUAGES {
        let ctx = Acknowledgement::sample(lang);
        let r = t.render_typed(lang, &ctx).unwrap();
        for item in &ctx.product_info_needed {
            assert!(
                r.body.contains(item.as_str()),
                "{lang}: missing {item}\n{}",
                r.body
            );
        }
        assert!(r.body.contains(&ctx.first_response_due));
        assert_eq!(r.subject, ctx.common.reply_subject);
    }
    let r = render(&t, TemplateKind::Acknowledgement, "ja");
    assert!(
        r.body
            .starts_with("株式会社サンプル\n山田 太郎 様\n\nいつもお世話になっております。"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("重大度　　　：2（業務への重大な影響）"),
        "{}",
        r.body
    );
    let r = render(&t, TemplateKind::Acknowledgement, "en");
    assert!(
        r.body.starts_with("Hello Jane Smith,\n\nThank you"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("Severity:              2 (severely impaired)"),
        "{}",
        r.body
    );
}

#[test]
fn unknown_name_gets_a_generic_salutation() {
    let t = shipped();
    let mut ctx = Acknowledgement::sample("ja");
    ctx.common.customer_name.clear();
    ctx.common.customer_company.clear();
    let r = t.render_typed("ja", &ctx).unwrap();
    assert!(
        r.body
            .starts_with("ご担当者様\n\nいつもお世話になっております。"),
        "{}",
        r.body
    );
    let mut ctx = Acknowledgement::sample("en");
    ctx.common.customer_name.clear();
    assert!(
        t.render_typed("en", &ctx)
            .unwrap()
            .body
            .starts_with("Hello,\n")
    );
}

#[test]
fn case_closed_asks_for_a_rating_by_digit() {
    let t = shipped();
    let ja = render(&t, TemplateKind::CaseClosed, "ja");
    assert!(
        ja.body.contains("1〜5の数字でご返信ください"),
        "{}",
        ja.body
    );
    let en = render(&t, TemplateKind::CaseClosed, "en");
    assert!(en.body.contains("single digit from 1 to 5"), "{}", en.body);
}

#[test]
fn severity_change_gives_the_reason() {
    let t = shipped();
    for lang in LANGUAGES {
        let ctx = sample_context(TemplateKind::SeverityChanged, lang);
        let r = render(&t, TemplateKind::SeverityChanged, lang);
        let reason = ctx["reason"].as_str().unwrap();
        assert!(r.body.contains(reason), "{lang}\n{}", r.body);
    }
}

#[test]
fn rendering_is_strict_at_run_time_too() {
    let t = shipped();
    let mut ctx = sample_context(TemplateKind::Acknowledgement, "en");
    ctx.as_object_mut().unwrap().remove("first_response_due");
    assert!(t.render(TemplateKind::Acknowledgement, "en", &ctx).is_err());
    assert!(
        t.render(
            TemplateKind::Acknowledgement,
            "de",
            &sample_context(TemplateKind::Acknowledgement, "en")
        )
        .is_err()
    );
}

/// A copy of the shipped templates in a temp dir, to break.
fn copy_of_shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for lang in LANGUAGES {
        std::fs::create_dir_all(dir.path().join(lang)).unwrap();
        for kind in TemplateKind::ALL {
            let name = format!("{}.txt", kind.name());
            std::fs::copy(
                shipped_dir().join(lang).join(&name),
                dir.path().join(lang).join(&name),
            )
            .unwrap();
        }
    }
    dir
}

fn problems_of(dir: &Path) -> Vec<String> {
    match load(dir) {
        Ok(_) => Vec::new(),
        Err(p) => p.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn load_names_every_problem() {
    let dir = copy_of_shipped();
    let ack = dir.path().join("ja/acknowledgement.txt");
    let text = std::fs::read_to_string(&ack).unwrap();
    // Line 4 of the file: a block that is never closed.
    let broken: Vec<&str> = text.lines().collect();
    let mut lines: Vec<String> = broken.iter().map(|s| s.to_string()).collect();
    lines.insert(3, "{% if customer_name %}".into());
    std::fs::write(&ack, lines.join("\n")).unwrap();
    let closed = dir.path().join("en/case_closed.txt");
    let text = std::fs::read_to_string(&closed).unwrap();
    std::fs::write(
        &closed,
        text.replace("{{ reopen_days }}", "{{ reopen_dayz }}"),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("ja/sla_breach.txt")).unwrap();

    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let ack_name = ack.display().to_string();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("{ack_name}: line ")) && p.contains("syntax error")),
        "{problems:#?}"
    );
    let closed_name = closed.display().to_string();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("{closed_name}: line "))
                && p.contains("unknown variable `reopen_dayz`")),
        "{problems:#?}"
    );
    let missing = dir.path().join("ja/sla_breach.txt").display().to_string();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&missing) && p.contains("missing")),
        "{problems:#?}"
    );
}

#[test]
fn syntax_error_reports_the_file_line() {
    let dir = copy_of_shipped();
    let path = dir.path().join("en/redirect_sales.txt");
    std::fs::write(
        &path,
        "Subject: {{ reply_subject }}\n\nHello,\n\n{{ case_number }\n",
    )
    .unwrap();
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!("{}: line 5: syntax error", path.display())),
        "{problems:#?}"
    );
}

#[test]
fn unknown_variable_in_a_branch_the_sample_does_not_take() {
    let dir = copy_of_shipped();
    let path = dir.path().join("en/refusal_expired.txt");
    let text = "Subject: {{ reply_subject }}\n\n{% if customer_name %}\nHello {{ customer_name }},\n{% else %}\nHello {{ costumer }},\n{% endif %}\n{{ case_number }}\n";
    std::fs::write(&path, text).unwrap();
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("line 6: unknown variable `costumer`"),
        "{problems:#?}"
    );
}

#[test]
fn bad_layout_and_stray_files_are_reported() {
    let dir = copy_of_shipped();
    std::fs::write(
        dir.path().join("en/acknowledgement.txt"),
        "Hello {{ case_number }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ja/acknowledgment.txt"),
        "Subject: x\n\nx\n",
    )
    .unwrap();
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p
                .contains("acknowledgement.txt: line 1: the first line must be `Subject: ...`"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("acknowledgment.txt: not a known template name"))
    );
    assert_eq!(problems_of(&dir.path().join("nowhere")).len(), 1);
}

/// `cargo test --test templates -- --ignored --nocapture` prints every rendered sample,
/// for proof-reading after an edit.
#[test]
#[ignore]
fn print_all() {
    let t = shipped();
    for lang in LANGUAGES {
        for kind in TemplateKind::ALL {
            let r = render(&t, kind, lang);
            println!(
                "===== {lang}/{kind} =====\nSubject: {}\n\n{}",
                r.subject, r.body
            );
        }
    }
}

/// Every shipped template rendered with its sample, as `Subject: ...`, a blank line and
/// the body, is `tests/fixtures/templates/<lang>/<kind>.txt`, so a change to a template
/// or to the rendering shows in review as the mail a person reads. With
/// `CASEGATE_BLESS=1` the files are (re)written instead; read them before committing.
#[test]
fn every_template_matches_its_golden_file() {
    let t = shipped();
    let bless = std::env::var("CASEGATE_BLESS").is_ok_and(|v| v == "1");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let mut failures = Vec::new();
    for kind in TemplateKind::ALL {
        for lang in LANGUAGES {
            let r = render(&t, kind, lang);
            let actual = format!("Subject: {}\n\n{}", r.subject, r.body);
            let path = dir.join(lang).join(format!("{}.txt", kind.name()));
            if bless {
                std::fs::create_dir_all(dir.join(lang)).expect("create the golden folder");
                std::fs::write(&path, &actual).expect("write the golden file");
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => failures.push(format!(
                    "{}: differs\n--- expected\n{expected}\n--- rendered\n{actual}",
                    path.display()
                )),
                Err(_) => failures.push(format!(
                    "{}: missing (run with CASEGATE_BLESS=1)",
                    path.display()
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

use super::*;

fn msg(author: Author, text: &str) -> StoryMessage {
    StoryMessage {
        author,
        text: text.to_string(),
    }
}

const EN_FIRST: &str = "Hello Support,\n\
\n\
Since the upgrade our nightly billing job fails with the error below.\n\
It worked on 4.1 for months.\n\
\n\
java.lang.IllegalStateException: Connection pool shut down\n\
\tat org.apache.http.pool.AbstractConnPool.lease(AbstractConnPool.java:189)\n\
\tat com.example.billing.Runner.run(Runner.java:42)\n\
\t... 17 more\n\
\n\
OS: RHEL 9.2\n\
\n\
Best regards,\n\
John Smith\n\
Senior Administrator, Acme Widgets Inc.\n\
Phone: +1 (555) 123-4567\n\
123 Main Street, Suite 400\n\
Springfield, IL 62704\n\
john.smith@acmewidgets.com\n";

const EN_ANSWER: &str = "Hi,\n\
\n\
Here is what you asked for:\n\
1. Controller 4.2.1 on RHEL 9.2\n\
2. Java: OpenJDK 17.0.9\n\
\n\
$ ansible --version\n\
\x20\x20ansible [core 2.15.3]\n\
\x20\x20python version = 3.11.2\n\
\n\
Thanks,\n\
John\n\
\n\
On Mon, 30 Nov 2026 at 10:00, Support <support@example.com> wrote:\n\
> Please send us the following\n";

const EN_ENGINEER: &str = "#kb draft\n\
#close\n\
\n\
Dear Mr Smith,\n\
\n\
The cause is a known issue in 4.2.1: the connection pool is closed when the\n\
job's HTTP client times out after 30 seconds.\n\
\n\
Please upgrade to 4.2.2, or as a workaround raise the timeout:\n\
\n\
\x20\x20\x20\x20http_client_timeout = 120\n\
\n\
Best regards,\n\
Kenji\n";

fn en_story() -> CaseStory {
    CaseStory {
        language: Language::En,
        subject: "Re: [Case #00000012] Billing job fails after upgrade [SEV 2]".into(),
        case_tag_word: "Case".into(),
        product: Some("ansible".into()),
        customer_email: "john.smith@acmewidgets.com".into(),
        customer_name: Some("John Smith".into()),
        company: Some("Acme Widgets".into()),
        free_mail: false,
        messages: vec![
            msg(Author::Customer, EN_FIRST),
            msg(
                Author::Engineer,
                "#internal\nThe customer John Smith is angry, see CRM.",
            ),
            msg(Author::Customer, EN_ANSWER),
            msg(Author::Engineer, EN_ENGINEER),
        ],
        references: vec![Reference {
            kind: "bug".into(),
            target: "RH-4711".into(),
        }],
    }
}

fn assert_no_customer(md: &str, forbidden: &[&str]) {
    for f in forbidden {
        assert!(!md.contains(f), "draft contains {f:?}:\n{md}");
    }
}

#[test]
fn english_draft_has_every_section() {
    let d = draft(&en_story());
    let md = &d.markdown;
    assert_eq!(d.title, "Billing job fails after upgrade");
    assert!(
        md.starts_with("# Billing job fails after upgrade\n\n## Symptom\n"),
        "{md}"
    );
    for h in [
        "## Symptom",
        "## Environment",
        "## Cause",
        "## Resolution",
        "## Related issue",
    ] {
        assert!(md.contains(h), "{h}:\n{md}");
    }
    assert!(
        md.contains("Since the upgrade our nightly billing job fails"),
        "{md}"
    );
    assert!(md.contains("- Bug: RH-4711"), "{md}");
}

#[test]
fn the_trace_stays_verbatim_in_a_code_block() {
    let md = draft(&en_story()).markdown;
    let block = "```text\n\
java.lang.IllegalStateException: Connection pool shut down\n\
\tat org.apache.http.pool.AbstractConnPool.lease(AbstractConnPool.java:189)\n\
\tat com.example.billing.Runner.run(Runner.java:42)\n\
\t... 17 more\n\
```";
    assert!(md.contains(block), "{md}");
    // The command output of the answer too, and the engineer's config line.
    assert!(
        md.contains("```text\n$ ansible --version\n  ansible [core 2.15.3]\n"),
        "{md}"
    );
    assert!(
        md.contains("```text\nhttp_client_timeout = 120\n```"),
        "{md}"
    );
}

#[test]
fn no_name_company_phone_address_or_email() {
    let md = draft(&en_story()).markdown;
    assert_no_customer(
        &md,
        &[
            "John",
            "Smith",
            "Acme",
            "acmewidgets",
            "555",
            "Main Street",
            "Springfield",
            "62704",
            "@",
            "Senior Administrator",
            "Kenji",
            "Best regards",
            "CRM",
        ],
    );
}

#[test]
fn environment_from_the_answers_to_the_acknowledgement() {
    let md = draft(&en_story()).markdown;
    let env = md
        .split("## Environment")
        .nth(1)
        .unwrap()
        .split("## Cause")
        .next()
        .unwrap();
    assert!(env.contains("- OS: RHEL 9.2"), "{env}");
    assert!(env.contains("- Controller 4.2.1 on RHEL 9.2"), "{env}");
    assert!(env.contains("- Java: OpenJDK 17.0.9"), "{env}");
    assert!(!env.contains("Here is what you asked for"), "{env}");
    assert!(!env.contains("Please send us"), "{env}");
    // Moved, not copied.
    let symptom = md.split("## Environment").next().unwrap();
    assert!(!symptom.contains("OS: RHEL"), "{symptom}");
}

#[test]
fn cause_and_resolution_from_the_engineer_commands_stripped() {
    let md = draft(&en_story()).markdown;
    let cause = md
        .split("## Cause")
        .nth(1)
        .unwrap()
        .split("## Resolution")
        .next()
        .unwrap();
    let resolution = md
        .split("## Resolution")
        .nth(1)
        .unwrap()
        .split("## Related")
        .next()
        .unwrap();
    assert!(
        cause.contains("The cause is a known issue in 4.2.1"),
        "{cause}"
    );
    assert!(
        resolution.contains("Please upgrade to 4.2.2"),
        "{resolution}"
    );
    assert_no_customer(&md, &["#kb", "#close", "Dear", "#internal"]);
}

#[test]
fn missing_sections_say_so() {
    let story = CaseStory {
        messages: vec![msg(Author::Customer, "The web UI shows a blank page.")],
        references: Vec::new(),
        ..en_story()
    };
    let md = draft(&story).markdown;
    assert_eq!(
        md.matches("_Not stated in the case; add it before publishing._")
            .count(),
        4,
        "{md}"
    );
}

#[test]
fn an_empty_subject_gets_a_title() {
    let story = CaseStory {
        subject: "Re: [Case #00000012]".into(),
        ..en_story()
    };
    assert_eq!(draft(&story).title, "Untitled problem");
}

#[test]
fn a_free_mail_domain_is_not_a_company() {
    let story = CaseStory {
        customer_email: "jsmith@gmail.com".into(),
        free_mail: true,
        company: None,
        messages: vec![msg(Author::Customer, "Our gmail integration breaks.")],
        ..en_story()
    };
    assert!(
        draft(&story)
            .markdown
            .contains("Our gmail integration breaks.")
    );
}

#[test]
fn greeting_names_of_engineers_are_scrubbed_everywhere() {
    let story = CaseStory {
        customer_name: None,
        customer_email: "ops@acmewidgets.com".into(),
        messages: vec![
            msg(Author::Customer, "Dana here: the scheduler skips jobs."),
            msg(
                Author::Engineer,
                "Hello Dana,\n\nThe cause is the time zone setting.\n",
            ),
        ],
        ..en_story()
    };
    let md = draft(&story).markdown;
    assert!(!md.contains("Dana"), "{md}");
    assert!(
        md.contains("[name] here: the scheduler skips jobs."),
        "{md}"
    );
}

#[test]
fn urls_in_references_are_links() {
    let story = CaseStory {
        references: vec![
            Reference {
                kind: "bug".into(),
                target: "https://bugs.example.com/123".into(),
            },
            Reference {
                kind: "kb".into(),
                target: "https://kb.example.com/9".into(),
            },
        ],
        ..en_story()
    };
    let md = draft(&story).markdown;
    assert!(
        md.contains(
            "- Bug: <https://bugs.example.com/123>\n- See also: <https://kb.example.com/9>"
        ),
        "{md}"
    );
}

const JA_FIRST: &str = "サポートご担当者様\n\
\n\
いつもお世話になっております。\n\
株式会社サンプル商事の田中です。\n\
\n\
本番環境で Automation Controller のジョブが失敗するようになりました。\n\
アップグレード後から発生しております。\n\
\n\
Traceback (most recent call last):\n\
\x20\x20File \"/usr/lib/python3.11/site-packages/awx/main/tasks.py\", line 512, in run\n\
\x20\x20\x20\x20self.pre_run_hook(instance)\n\
PermissionError: [Errno 13] Permission denied: '/var/lib/awx/projects'\n\
\n\
ご確認のほど、よろしくお願いいたします。\n\
\n\
━━━━━━━━━━━━━━━━━━━━\n\
株式会社サンプル商事 情報システム部\n\
田中 太郎 (Taro Tanaka)\n\
〒100-0005 東京都千代田区丸の内1-1-1\n\
TEL：03-1234-5678\n\
E-mail：taro.tanaka@sample-shoji.co.jp\n\
━━━━━━━━━━━━━━━━━━━━\n";

const JA_ANSWER: &str = "お世話になっております。\n\
サンプル商事の田中です。\n\
\n\
ご依頼の情報をお送りいたします。\n\
・OS：RHEL 8.8\n\
・Controller バージョン：4.4.2\n\
\n\
よろしくお願いいたします。\n\
田中\n";

const JA_ENGINEER: &str = "＃kb draft\n\
\n\
田中様\n\
\n\
お世話になっております。\n\
\n\
原因は、アップグレード時にプロジェクトディレクトリの所有者が root に変更されたことによるものです。\n\
\n\
以下のコマンドで所有者を戻してください。\n\
\n\
\x20\x20\x20\x20chown -R awx:awx /var/lib/awx/projects\n\
\n\
よろしくお願いいたします。\n";

fn ja_story() -> CaseStory {
    CaseStory {
        language: Language::Ja,
        subject: "[Case #00000034] ジョブ実行時に Permission denied が発生する".into(),
        case_tag_word: "Case".into(),
        product: Some("ansible".into()),
        customer_email: "taro.tanaka@sample-shoji.co.jp".into(),
        customer_name: Some("Taro Tanaka".into()),
        company: Some("株式会社サンプル商事".into()),
        free_mail: false,
        messages: vec![
            msg(Author::Customer, JA_FIRST),
            msg(Author::Customer, JA_ANSWER),
            msg(Author::Engineer, JA_ENGINEER),
        ],
        references: vec![Reference {
            kind: "bug".into(),
            target: "AAP-1234".into(),
        }],
    }
}

#[test]
fn japanese_draft_in_japanese() {
    let d = draft(&ja_story());
    let md = &d.markdown;
    assert_eq!(d.title, "ジョブ実行時に Permission denied が発生する");
    for h in [
        "## 現象",
        "## 環境",
        "## 原因",
        "## 解決方法",
        "## 関連情報",
    ] {
        assert!(md.contains(h), "{h}:\n{md}");
    }
    assert!(
        md.contains("本番環境で Automation Controller のジョブが失敗するようになりました。"),
        "{md}"
    );
    assert!(md.contains("- 不具合: AAP-1234"), "{md}");
    let env = md
        .split("## 環境")
        .nth(1)
        .unwrap()
        .split("## 原因")
        .next()
        .unwrap();
    assert!(env.contains("- OS：RHEL 8.8"), "{env}");
    assert!(env.contains("- Controller バージョン：4.4.2"), "{env}");
    let cause = md
        .split("## 原因")
        .nth(1)
        .unwrap()
        .split("## 解決方法")
        .next()
        .unwrap();
    assert!(cause.contains("所有者が root に変更された"), "{cause}");
    let fix = md.split("## 解決方法").nth(1).unwrap();
    assert!(
        fix.contains("```text\nchown -R awx:awx /var/lib/awx/projects\n```"),
        "{fix}"
    );
}

#[test]
fn japanese_trace_verbatim_and_customer_gone() {
    let md = draft(&ja_story()).markdown;
    assert!(md.contains(
        "```text\nTraceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/awx/main/tasks.py\", line 512, in run\n    self.pre_run_hook(instance)\nPermissionError: [Errno 13] Permission denied: '/var/lib/awx/projects'\n```"
    ), "{md}");
    assert_no_customer(
        &md,
        &[
            "田中",
            "太郎",
            "Tanaka",
            "Taro",
            "サンプル商事",
            "sample-shoji",
            "丸の内",
            "100-0005",
            "03-1234-5678",
            "情報システム部",
            "お世話になっております",
            "よろしくお願いいたします",
            "ご担当者様",
            "@",
            "kb draft",
        ],
    );
}

#[test]
fn severity_markers_leave_the_title() {
    for (subject, title) in [
        ("[SEV 1] Controller down", "Controller down"),
        ("Jobs hang Severity: 2", "Jobs hang"),
        ("Fwd: RE: 重大度：３ ジョブが停止する", "ジョブが停止する"),
    ] {
        let story = CaseStory {
            subject: subject.into(),
            ..en_story()
        };
        assert_eq!(draft(&story).title, title, "{subject}");
    }
    let story = CaseStory {
        messages: vec![msg(
            Author::Customer,
            "The UI is slow.\nSeverity: 2\n重大度：３",
        )],
        ..en_story()
    };
    let md = draft(&story).markdown;
    assert!(!md.contains("Severity") && !md.contains("重大度"), "{md}");
}

#[test]
fn a_dash_dash_signature_names_are_scrubbed_from_the_body_too() {
    let story = CaseStory {
        customer_name: None,
        customer_email: "ops@acmewidgets.com".into(),
        messages: vec![msg(
            Author::Customer,
            "Our admin Priya Raman restarted the node; the job still fails.\n-- \nPriya Raman\nPlatform team\n",
        )],
        ..en_story()
    };
    let md = draft(&story).markdown;
    assert!(md.contains("Our admin [name] restarted the node"), "{md}");
    assert!(
        !md.contains("Priya") && !md.contains("Platform team"),
        "{md}"
    );
}

#[test]
fn only_a_real_introduction_names_someone() {
    let mut s = Scrubber::new(Language::Ja);
    s.add_company("アクメ株式会社");
    assert_eq!(
        introduction("株式会社サンプル商事の田中です。", &s),
        Some((Some("株式会社サンプル商事"), "田中"))
    );
    assert_eq!(
        introduction("アクメの鈴木です。", &s),
        Some((Some("アクメ"), "鈴木"))
    );
    assert_eq!(introduction("佐藤と申します。", &s), Some((None, "佐藤")));
    for not_one in [
        "原因は設定の誤りによるものです。",
        "本番環境の問題です。",
        "こちらの件です。",
        "以上です。",
    ] {
        assert_eq!(introduction(not_one, &s), None, "{not_one}");
    }
}

/// Odd input never panics and always gives the five sections.
#[test]
fn odd_text_gives_a_draft() {
    for text in [
        "",
        "@",
        "\u{3000}\u{3000}\t  at x(\n> quoted only",
        "-- \n",
        "━━━━━\n株式会社\n様\nです",
        "Tel: ０３－１２３４－５６７８ 〒",
        "```\nat a.B(C.java:1)\n```",
        "İstanbul İİİ at İ(İ)",
        "Dear Mr ,\n\n#kb draft",
        "\u{3000}at a.B.c(D.java:1)\n\t\u{3000}at a.B.d(D.java:2)",
    ] {
        for author in [Author::Customer, Author::Engineer] {
            let story = CaseStory {
                subject: text.into(),
                customer_name: Some(text.into()),
                company: Some(text.into()),
                messages: vec![msg(author, text), msg(Author::Customer, text)],
                ..en_story()
            };
            let md = draft(&story).markdown;
            assert_eq!(md.matches("\n## ").count(), 5, "{text:?}:\n{md}");
        }
    }
}

//! Knowledge-base articles (issue 18b): the drafts `#kb draft` makes, the articles
//! engineers publish from them, and the facts a draft is made from.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, Work, from_ms, to_ms};
use crate::domain::CaseNumber;
use crate::domain::decide::KbChange;
use crate::domain::kb::{ArticleStatus, Author, Reference, StoryMessage};
use crate::domain::outbound::TemplateKind;

/// One recorded article.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KbArticle {
    pub id: i64,
    pub case: CaseNumber,
    pub language: String,
    pub title: String,
    #[serde(skip)]
    pub markdown: String,
    /// Who asked for the draft; once published, who published it.
    pub author: String,
    pub status: ArticleStatus,
    pub url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    /// The case's product and linked bugs, for the export's front matter.
    pub product: Option<String>,
    pub related: Vec<String>,
}

const ARTICLE_COLUMNS: &str = "a.id, a.case_id, a.language, a.title, a.markdown, a.author, a.status, \
     a.url, a.created_at, a.published_at, c.product";

impl Work {
    /// The case's messages as a draft reads them (what people wrote, in order) and its
    /// bug and article links.
    pub async fn kb_story_rows(
        &mut self,
        case: CaseNumber,
    ) -> Result<(Vec<StoryMessage>, Vec<Reference>), StoreError> {
        let rows = sqlx::query(
            "SELECT role, text FROM messages WHERE case_id = $1 AND direction = 'in' \
             AND role IN ('customer', 'engineer') ORDER BY received_at, id",
        )
        .bind(case.0)
        .fetch_all(&mut *self.tx)
        .await?;
        let messages = rows
            .iter()
            .map(|r| StoryMessage {
                author: if r.get::<String, _>(0) == "engineer" {
                    Author::Engineer
                } else {
                    Author::Customer
                },
                text: r.get(1),
            })
            .collect();
        let links = sqlx::query(
            "SELECT kind, target FROM case_links WHERE case_id = $1 ORDER BY kind, target",
        )
        .bind(case.0)
        .fetch_all(&mut *self.tx)
        .await?
        .iter()
        .map(|r| Reference {
            kind: r.get(0),
            target: r.get(1),
        })
        .collect();
        Ok((messages, links))
    }

    /// Whether the case has an article, and the Message-IDs of the draft mails sent
    /// for it (a reply to one of them is about the article).
    pub async fn kb_state(&mut self, case: CaseNumber) -> Result<(bool, Vec<String>), StoreError> {
        let articles: i64 = sqlx::query("SELECT COUNT(*) FROM kb_articles WHERE case_id = $1")
            .bind(case.0)
            .fetch_one(&mut *self.tx)
            .await?
            .get(0);
        let ids = sqlx::query("SELECT message_id FROM outbox WHERE case_id = $1 AND kind = $2")
            .bind(case.0)
            .bind(TemplateKind::KbDraft.name())
            .fetch_all(&mut *self.tx)
            .await?
            .iter()
            .map(|r| r.get::<String, _>(0).trim_matches(['<', '>']).to_string())
            .collect();
        Ok((articles > 0, ids))
    }
}

/// The plan's article changes, inside its transaction.
pub(super) async fn apply_kb(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
    changes: &[KbChange],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for change in changes {
        match change {
            KbChange::Draft {
                language,
                title,
                markdown,
                requested_by,
            } => {
                sqlx::query(
                    "INSERT INTO kb_articles (case_id, language, title, markdown, author, status, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(case.0)
                .bind(language.as_str())
                .bind(title.clone())
                .bind(markdown.clone())
                .bind(requested_by.clone())
                .bind(ArticleStatus::Draft.as_str())
                .bind(to_ms(now))
                .execute(&mut **tx)
                .await?;
            }
            KbChange::Publish {
                author,
                url,
                title,
                markdown,
            } => {
                publish(
                    tx,
                    case,
                    author,
                    url.as_deref(),
                    title.as_deref(),
                    markdown.as_deref(),
                    now,
                )
                .await?
            }
        }
    }
    Ok(())
}

/// The case's latest article becomes published by `author`; an edited text replaces
/// its own. A case without an article (an edited file for a case whose draft was lost)
/// gets one.
async fn publish(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
    author: &str,
    url: Option<&str>,
    title: Option<&str>,
    markdown: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let latest: Option<i64> = sqlx::query("SELECT MAX(id) FROM kb_articles WHERE case_id = $1")
        .bind(case.0)
        .fetch_one(&mut **tx)
        .await?
        .get(0);
    match latest {
        Some(id) => {
            sqlx::query(
                "UPDATE kb_articles SET status = $1, author = $2, url = COALESCE($3, url), \
                 title = COALESCE($4, title), markdown = COALESCE($5, markdown), published_at = $6 \
                 WHERE id = $7",
            )
            .bind(ArticleStatus::Published.as_str())
            .bind(author.to_string())
            .bind(url.map(str::to_string))
            .bind(title.map(str::to_string))
            .bind(markdown.map(str::to_string))
            .bind(to_ms(now))
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO kb_articles (case_id, language, title, markdown, author, status, url, created_at, published_at) \
                 SELECT id, COALESCE(language, 'en'), COALESCE($2, subject), $3, $4, $5, $6, $7, $7 FROM cases WHERE id = $1",
            )
            .bind(case.0)
            .bind(title.map(str::to_string))
            .bind(markdown.unwrap_or_default().to_string())
            .bind(author.to_string())
            .bind(ArticleStatus::Published.as_str())
            .bind(url.map(str::to_string))
            .bind(to_ms(now))
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

impl Store {
    /// Every article, newest first.
    pub async fn kb_articles(&self) -> Result<Vec<KbArticle>, StoreError> {
        let sql = format!(
            "SELECT {ARTICLE_COLUMNS} FROM kb_articles a JOIN cases c ON c.id = a.case_id ORDER BY a.id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        self.with_related(rows).await
    }

    /// One article by its id.
    pub async fn kb_article(&self, id: i64) -> Result<Option<KbArticle>, StoreError> {
        let sql = format!(
            "SELECT {ARTICLE_COLUMNS} FROM kb_articles a JOIN cases c ON c.id = a.case_id WHERE a.id = $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(self.with_related(rows).await?.pop())
    }

    /// The articles of one case, newest first.
    pub async fn kb_case_articles(&self, case: CaseNumber) -> Result<Vec<KbArticle>, StoreError> {
        let sql = format!(
            "SELECT {ARTICLE_COLUMNS} FROM kb_articles a JOIN cases c ON c.id = a.case_id WHERE a.case_id = $1 ORDER BY a.id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(case.0)
            .fetch_all(&self.pool)
            .await?;
        self.with_related(rows).await
    }

    async fn with_related(&self, rows: Vec<AnyRow>) -> Result<Vec<KbArticle>, StoreError> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut a = article(&r)?;
            a.related = sqlx::query(
                "SELECT target FROM case_links WHERE case_id = $1 AND kind = 'bug' ORDER BY target",
            )
            .bind(a.case.0)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
            out.push(a);
        }
        Ok(out)
    }
}

fn article(r: &AnyRow) -> Result<KbArticle, StoreError> {
    let status: String = r.get(6);
    Ok(KbArticle {
        id: r.get(0),
        case: CaseNumber(r.get(1)),
        language: r.get(2),
        title: r.get(3),
        markdown: r.get(4),
        author: r.get(5),
        status: ArticleStatus::parse(&status).ok_or(StoreError::Corrupt {
            column: "kb_articles.status",
            value: status,
        })?,
        url: r.get(7),
        created_at: from_ms(r.get(8)),
        published_at: r.get::<Option<i64>, _>(9).map(from_ms),
        product: r.get(10),
        related: Vec::new(),
    })
}

//! `casegate kb`: the knowledge-base articles engineers drafted (`#kb draft`) and
//! published (issue 18b).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::domain::CaseNumber;
use crate::domain::kb::{ArticleMeta, ArticleStatus, front_matter};
use crate::store::KbArticle;

/// Knowledge-base articles: drafts from `#kb draft` and the articles published from them.
#[derive(Debug, Subcommand)]
pub enum Kb {
    /// List every article, newest first: id, case, language, status, author, title.
    List(List),
    /// Print one article as Markdown with its front matter: by id, or by case number
    /// (eight digits, as `cases list` prints it: the case's newest article).
    Show(Show),
    /// Write every published article to DIR, one Markdown file with YAML front matter
    /// each (`case-NUMBER-article-ID.md`), ready for a docs site. DIR is created when
    /// missing; files of an earlier export are overwritten.
    Export(Export),
}

#[derive(Debug, Args)]
pub struct List {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct Show {
    /// An article id, or a case number of eight digits.
    article: String,
}

#[derive(Debug, Args)]
pub struct Export {
    dir: PathBuf,
}

impl Kb {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let store = super::open_store_only(path).await?;
        let code = match self {
            Kb::List(l) => {
                let articles = store.kb_articles().await?;
                if l.json {
                    println!("{}", serde_json::to_string_pretty(&articles)?);
                } else {
                    print_table(&articles);
                }
                0
            }
            Kb::Show(s) => {
                let found = match s.article.trim() {
                    a if a.len() == 8 && a.chars().all(|c| c.is_ascii_digit()) => {
                        let n: CaseNumber = a
                            .parse()
                            .map_err(|_| anyhow::anyhow!("bad case number {a}"))?;
                        store.kb_case_articles(n).await?.into_iter().next()
                    }
                    a => match a.parse::<i64>() {
                        Ok(id) => store.kb_article(id).await?,
                        Err(_) => {
                            eprintln!(
                                "casegate: \"{a}\" is neither an article id nor a case number of eight digits"
                            );
                            store.close().await;
                            return Ok(1);
                        }
                    },
                };
                match found {
                    Some(a) => {
                        print!("{}", document(&a));
                        0
                    }
                    None => {
                        eprintln!("casegate: no article {}", s.article);
                        1
                    }
                }
            }
            Kb::Export(e) => {
                let articles = store.kb_articles().await?;
                let written = export(&articles, &e.dir)?;
                println!(
                    "{written} published article(s) written to {}",
                    e.dir.display()
                );
                0
            }
        };
        store.close().await;
        Ok(code)
    }
}

/// The article as a docs site reads it: front matter, then the Markdown.
fn document(a: &KbArticle) -> String {
    let meta = ArticleMeta {
        title: a.title.clone(),
        case: a.case.to_string(),
        language: a.language.clone(),
        product: a.product.clone(),
        author: a.author.clone(),
        published_at: a.published_at,
        url: a.url.clone(),
        related: a.related.clone(),
    };
    let mut doc = front_matter(&meta);
    doc.push('\n');
    doc.push_str(a.markdown.trim_end());
    doc.push('\n');
    doc
}

fn export(articles: &[KbArticle], dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = 0;
    for a in articles
        .iter()
        .filter(|a| a.status == ArticleStatus::Published)
    {
        let file = dir.join(format!("case-{}-article-{}.md", a.case, a.id));
        std::fs::write(&file, document(a))
            .with_context(|| format!("cannot write {}", file.display()))?;
        written += 1;
    }
    Ok(written)
}

fn print_table(articles: &[KbArticle]) {
    if articles.is_empty() {
        println!("no articles yet (an engineer makes a draft with #kb draft)");
        return;
    }
    println!(
        "{:>4}  {:<8}  {:<4}  {:<9}  {:<28}  {:<10}  TITLE",
        "ID", "CASE", "LANG", "STATUS", "AUTHOR", "PUBLISHED"
    );
    for a in articles {
        println!(
            "{:>4}  {:<8}  {:<4}  {:<9}  {:<28}  {:<10}  {}",
            a.id,
            a.case,
            a.language,
            a.status.as_str(),
            a.author,
            a.published_at
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "-".into()),
            a.title
        );
    }
}

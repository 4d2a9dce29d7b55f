//! Which language a page is shown in: English or Japanese, from `Accept-Language`.

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// The best of en/ja for an `Accept-Language` value (RFC 9110 §12.5.4): the range
    /// with the highest q-value that names one of them; English when none does.
    pub fn negotiate(header: Option<&str>) -> Lang {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (pos, item) in header.unwrap_or("").split(',').enumerate() {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let primary = range.split('-').next().unwrap_or("");
            let lang = match primary {
                "ja" => Lang::Ja,
                "en" => Lang::En,
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            // Higher q wins; on a tie the earlier range.
            if best.is_none_or(|(bq, bp, _)| q > bq || (q == bq && pos < bp)) {
                best = Some((q, pos, lang));
            }
        }
        best.map_or(Lang::En, |b| b.2)
    }
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn accept_language_picks_japanese_or_english() {
        assert_eq!(Lang::negotiate(Some("ja")), Lang::Ja);
        assert_eq!(
            Lang::negotiate(Some("ja-JP,ja;q=0.9,en-US;q=0.8")),
            Lang::Ja
        );
        assert_eq!(Lang::negotiate(Some("en-US,en;q=0.9,ja;q=0.8")), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr-FR,ja;q=0.5")), Lang::Ja);
        assert_eq!(Lang::negotiate(Some("de,fr")), Lang::En);
        assert_eq!(Lang::negotiate(Some("ja;q=0")), Lang::En);
        assert_eq!(Lang::negotiate(None), Lang::En);
    }
}

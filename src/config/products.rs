//! `[product_info.PRODUCT]`: what each product's team needs from the customer, per
//! language, asked for in the acknowledgement. `default` applies to products not listed.

use super::load::Reader;
use super::settings::ProductInfo;

const DEFAULT_EN: &[&str] = &[
    "Operating system and version (e.g. RHEL 9.4)",
    "Product version (e.g. the output of `ansible --version`)",
    "How the product is installed and configured (topology, relevant configuration files)",
    "Logs covering the time of the problem, and the exact error message",
    "When the problem started and what changed just before",
];

const DEFAULT_JA: &[&str] = &[
    "OS の種類とバージョン（例: RHEL 9.4）",
    "製品のバージョン（例: `ansible --version` の出力結果）",
    "製品のインストール構成および設定内容（構成図、関連する設定ファイル）",
    "事象発生時刻を含むログ、および表示されたエラーメッセージの全文",
    "事象の発生時期と、その直前に行った変更の有無",
];

pub(super) fn read(r: &mut Reader<'_>) -> ProductInfo {
    let mut info = ProductInfo::default();
    info.items.insert(
        ("default".into(), "en".into()),
        DEFAULT_EN.iter().map(|s| s.to_string()).collect(),
    );
    info.items.insert(
        ("default".into(), "ja".into()),
        DEFAULT_JA.iter().map(|s| s.to_string()).collect(),
    );
    for product in r.table_keys("product_info") {
        for lang in ["en", "ja"] {
            let key = format!("product_info.{product}.{lang}");
            let items = r.string_list_raw(&key);
            if let Some(items) = items {
                info.items
                    .insert((product.to_lowercase(), lang.to_string()), items);
            }
        }
    }
    info
}

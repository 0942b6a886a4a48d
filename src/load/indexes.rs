//! Deferred secondary indexes: which index definitions of a `CREATE TABLE` (as rdump wrote
//! it, from `SHOW CREATE TABLE`) are left out when the table is created and added after its
//! data, in one `ALTER TABLE ... ADD ..., ADD ...`.
//!
//! The CREATE text is split into its top-level definitions (quote- and paren-aware), so the
//! result does not depend on line layout. Kept in the CREATE:
//! * the PRIMARY KEY, columns, constraints (CHECK, FOREIGN KEY) and anything else that is not
//!   a plain index definition;
//! * the first index a FOREIGN KEY of this table needs (its columns start with the
//!   constraint's columns), and the first index a FOREIGN KEY of another loaded table needs
//!   on this one as its parent (starts with the referenced columns), unless the PRIMARY KEY
//!   serves: InnoDB would otherwise create one itself, or refuse;
//! * the first index starting with the AUTO_INCREMENT column, unless the PRIMARY KEY does;
//! * every index after a kept one: the server orders indexes by kind (unique, plain,
//!   fulltext) and then by the order they were added, so deferring only a suffix of the
//!   list gives back exactly the original order (and `SHOW CREATE TABLE` text).
//!
//! Tables without a PRIMARY KEY keep all their indexes (InnoDB would pick a UNIQUE NOT NULL
//! index as the clustered one). Deferred UNIQUE indexes mean a duplicate would be found only
//! when the index is added, after the data (a faithful dump has none; the ALTER then fails
//! with the server's duplicate-key error and the load stops, resumable once fixed).
//!
//! Not for: running the ALTER (see `schema`).

/// One lexical token of a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A bare word (keyword or name), as written.
    Word(String),
    /// A quoted name or string: the quote character and the unquoted text.
    Quoted(char, String),
    Open,
    Close,
    Comma,
    Dot,
    Other(char),
}

impl Tok {
    fn is_word(&self, w: &str) -> bool {
        matches!(self, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }

    /// A name: a bare word, or a backtick- or double-quoted identifier.
    pub fn name(&self) -> Option<&str> {
        match self {
            Tok::Word(w) => Some(w),
            Tok::Quoted('`' | '"', n) => Some(n),
            _ => None,
        }
    }
}

/// Tokens of SQL text; whitespace, comments and version-comment markers are skipped.
pub fn tokens(text: &str) -> Vec<Tok> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            _ if c.is_ascii_whitespace() => i += 1,
            b'/' if b.get(i + 1) == Some(&b'*') => {
                if b.get(i + 2) == Some(&b'!') || b.get(i + 2..i + 4) == Some(b"M!") {
                    i += 3;
                    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'!') {
                        i += 1;
                    }
                } else {
                    i = text[i + 2..].find("*/").map_or(b.len(), |k| i + 2 + k + 2);
                }
            }
            b'*' if b.get(i + 1) == Some(&b'/') => i += 2,
            b'#' => i = text[i..].find('\n').map_or(b.len(), |k| i + k + 1),
            b'-' if b.get(i + 1) == Some(&b'-') && b.get(i + 2).is_none_or(|&c| c <= b' ') => {
                i = text[i..].find('\n').map_or(b.len(), |k| i + k + 1)
            }
            b'`' | b'"' | b'\'' => {
                let mut s = Vec::new();
                let mut j = i + 1;
                while j < b.len() {
                    if b[j] == c && b.get(j + 1) == Some(&c) {
                        s.push(c);
                        j += 2;
                    } else if b[j] == c {
                        j += 1;
                        break;
                    } else if b[j] == b'\\' && c != b'`' && j + 1 < b.len() {
                        s.push(b[j + 1]);
                        j += 2;
                    } else {
                        s.push(b[j]);
                        j += 1;
                    }
                }
                out.push(Tok::Quoted(
                    c as char,
                    String::from_utf8_lossy(&s).into_owned(),
                ));
                i = j;
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            b'.' => {
                out.push(Tok::Dot);
                i += 1;
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => {
                let j = b[i..]
                    .iter()
                    .position(|&c| {
                        !(c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80)
                    })
                    .map_or(b.len(), |k| i + k);
                out.push(Tok::Word(text[i..j].to_string()));
                i = j;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                out.push(Tok::Other(ch));
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// The CREATE TABLE text around and between its top-level definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateParts {
    /// Up to and including the opening parenthesis.
    pub head: String,
    /// Each definition, trimmed, without its separating comma.
    pub defs: Vec<String>,
    /// From the closing parenthesis on (table options, partitioning).
    pub tail: String,
}

impl CreateParts {
    pub fn join(&self, keep: impl Fn(usize) -> bool) -> String {
        let kept: Vec<&str> = self
            .defs
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, d)| d.as_str())
            .collect();
        format!("{}\n  {}\n{}", self.head, kept.join(",\n  "), self.tail)
    }
}

/// Splits a CREATE TABLE statement at its top-level definitions.
pub fn split_create(create: &str) -> Option<CreateParts> {
    let b = create.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut open = None;
    let mut start = 0;
    let mut defs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' && q != b'`' {
                i += 2;
                continue;
            }
            if c == q {
                if b.get(i + 1) == Some(&q) {
                    i += 2;
                    continue;
                }
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' | b'`' => quote = Some(c),
            b'(' => {
                depth += 1;
                if depth == 1 && open.is_none() {
                    open = Some(i);
                    start = i + 1;
                }
            }
            b')' => {
                if depth == 0 {
                    return None;
                }
                depth -= 1;
                if depth == 0 && open.is_some() {
                    defs.push(create[start..i].trim().to_string());
                    return Some(CreateParts {
                        head: create[..=open?].to_string(),
                        defs,
                        tail: create[i..].to_string(),
                    });
                }
            }
            b',' if depth == 1 => {
                defs.push(create[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Def {
    Primary {
        columns: Vec<String>,
    },
    Index {
        name: String,
        columns: Vec<String>,
        plain_columns: bool,
        ordinary: bool,
    },
    ForeignKey(ForeignKey),
    Column {
        name: String,
        auto_increment: bool,
    },
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    /// The referenced table's database when written (`db`.`t`), else the child's.
    pub parent_db: Option<String>,
    pub parent: String,
    pub parent_columns: Vec<String>,
}

/// The names in the first parenthesised list at or after `from`; also whether every element
/// is a plain column (no prefix length, no expression), and the index after the list.
fn column_list(t: &[Tok], from: usize) -> Option<(Vec<String>, bool, usize)> {
    let open = from + t[from..].iter().position(|x| *x == Tok::Open)?;
    let mut cols = Vec::new();
    let mut plain = true;
    let mut depth = 0;
    let mut first_in_part = true;
    let mut i = open;
    while i < t.len() {
        match &t[i] {
            Tok::Open => {
                depth += 1;
                if depth > 1 {
                    plain = false;
                }
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some((cols, plain, i + 1));
                }
            }
            Tok::Comma if depth == 1 => first_in_part = true,
            tok if depth == 1 && first_in_part => {
                match tok.name() {
                    Some(n) => cols.push(n.to_string()),
                    None => plain = false,
                }
                first_in_part = false;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// What one top-level definition of a CREATE TABLE is.
pub fn classify(def: &str) -> Def {
    let t = tokens(def);
    let first = match t.first() {
        Some(x) => x,
        None => return Def::Other,
    };
    if first.is_word("PRIMARY") {
        return column_list(&t, 0)
            .map(|(columns, _, _)| Def::Primary { columns })
            .unwrap_or(Def::Other);
    }
    let is_index = ["KEY", "INDEX", "UNIQUE", "FULLTEXT", "SPATIAL"]
        .iter()
        .any(|w| first.is_word(w));
    if is_index {
        let ordinary = !(first.is_word("FULLTEXT") || first.is_word("SPATIAL"));
        // The name: the first name token before the column list that is not a keyword.
        let open = t.iter().position(|x| *x == Tok::Open).unwrap_or(t.len());
        let name = t[..open]
            .iter()
            .filter(|x| {
                !["KEY", "INDEX", "UNIQUE", "FULLTEXT", "SPATIAL"]
                    .iter()
                    .any(|w| x.is_word(w))
            })
            .find_map(|x| x.name())
            .map(String::from);
        return match (name, column_list(&t, 0)) {
            (Some(name), Some((columns, plain_columns, _))) => Def::Index {
                name,
                columns,
                plain_columns,
                ordinary,
            },
            _ => Def::Other,
        };
    }
    let fk_at = t
        .windows(2)
        .position(|w| w[0].is_word("FOREIGN") && w[1].is_word("KEY"));
    if let (Some(at), true) = (
        fk_at,
        first.is_word("CONSTRAINT") || first.is_word("FOREIGN"),
    ) {
        let Some((columns, _, after)) = column_list(&t, at + 2) else {
            return Def::Other;
        };
        let Some(r) = t[after..].iter().position(|x| x.is_word("REFERENCES")) else {
            return Def::Other;
        };
        let r = after + r + 1;
        let (parent_db, parent, next) = match (t.get(r), t.get(r + 1), t.get(r + 2)) {
            (Some(a), Some(Tok::Dot), Some(b)) if a.name().is_some() && b.name().is_some() => (
                a.name().map(String::from),
                b.name().unwrap_or("").to_string(),
                r + 3,
            ),
            (Some(a), _, _) if a.name().is_some() => {
                (None, a.name().unwrap_or("").to_string(), r + 1)
            }
            _ => return Def::Other,
        };
        let Some((parent_columns, _, _)) = column_list(&t, next) else {
            return Def::Other;
        };
        return Def::ForeignKey(ForeignKey {
            columns,
            parent_db,
            parent,
            parent_columns,
        });
    }
    if let Tok::Quoted('`', name) = first {
        return Def::Column {
            name: name.clone(),
            auto_increment: t.iter().any(|x| x.is_word("AUTO_INCREMENT")),
        };
    }
    Def::Other
}

/// The foreign keys of a CREATE TABLE.
pub fn foreign_keys(create: &str) -> Vec<ForeignKey> {
    split_create(create)
        .map(|p| {
            p.defs
                .iter()
                .filter_map(|d| match classify(d) {
                    Def::ForeignKey(fk) => Some(fk),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every index definition of a CREATE TABLE but the PRIMARY KEY: (name, definition).
pub fn all_indexes(create: &str) -> Vec<(String, String)> {
    let Some(parts) = split_create(create) else {
        return Vec::new();
    };
    parts
        .defs
        .iter()
        .filter_map(|d| match classify(d) {
            Def::Index { name, .. } => Some((name, d.clone())),
            _ => None,
        })
        .collect()
}

/// A CREATE TABLE without its deferred indexes, and those indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferral {
    pub create: String,
    /// (index name, definition as `ALTER TABLE ... ADD` takes it), in CREATE order.
    pub deferred: Vec<(String, String)>,
}

/// Which indexes of `create` to defer (see the module doc). `referenced`: the column lists
/// other tables' foreign keys reference in this table. `None` when nothing is deferred.
pub fn defer(create: &str, referenced: &[Vec<String>]) -> Option<Deferral> {
    let parts = split_create(create)?;
    let defs: Vec<Def> = parts.defs.iter().map(|d| classify(d)).collect();
    let primary = defs.iter().find_map(|d| match d {
        Def::Primary { columns } => Some(columns.clone()),
        _ => None,
    })?;
    let mut needs: Vec<Vec<String>> = referenced.to_vec();
    for d in &defs {
        match d {
            Def::ForeignKey(fk) => needs.push(fk.columns.clone()),
            Def::Column {
                name,
                auto_increment: true,
            } => needs.push(vec![name.clone()]),
            _ => {}
        }
    }
    let mut last_kept: Option<usize> = None;
    for need in needs.iter().filter(|n| !n.is_empty()) {
        if primary.starts_with(need) {
            continue;
        }
        let serving = defs.iter().position(|d| {
            matches!(d, Def::Index { columns, plain_columns: true, ordinary: true, .. }
                if columns.starts_with(need))
        });
        match serving {
            Some(i) => last_kept = last_kept.max(Some(i)),
            // No index serves it: the server would create one; keep them all.
            None => return None,
        }
    }
    let deferred: Vec<usize> = defs
        .iter()
        .enumerate()
        .filter(|(i, d)| matches!(d, Def::Index { .. }) && last_kept.is_none_or(|k| *i > k))
        .map(|(i, _)| i)
        .collect();
    if deferred.is_empty() {
        return None;
    }
    Some(Deferral {
        create: parts.join(|i| !deferred.contains(&i)),
        deferred: deferred
            .iter()
            .map(|&i| match &defs[i] {
                Def::Index { name, .. } => (name.clone(), parts.defs[i].clone()),
                _ => unreachable!("only index definitions are deferred"),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS_T: &str = "CREATE TABLE `options_t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `email` varchar(100) NOT NULL COMMENT 'column comment: it''s \"quoted\"',\n  `score` int(11) NOT NULL DEFAULT (1 + 1),\n  `quoted_default` varchar(20) DEFAULT 'it''s \\\\ \"x\"',\n  `price` decimal(8,2) DEFAULT NULL CHECK (`price` >= 0),\n  `prefix_col` text DEFAULT NULL,\n  `desc_col` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uk_email` (`email`),\n  KEY `k_prefix` (`prefix_col`(10)),\n  KEY `k_desc` (`desc_col` DESC,`id`),\n  CONSTRAINT `chk score` CHECK (`score` between 0 and 100)\n) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4 COMMENT='options, (x)'";

    #[test]
    fn split_keeps_quoted_commas_and_parentheses_inside_definitions() {
        let p = split_create(OPTIONS_T).unwrap();
        assert_eq!(p.head, "CREATE TABLE `options_t` (");
        assert_eq!(p.defs.len(), 12);
        assert_eq!(
            p.defs[4],
            "`price` decimal(8,2) DEFAULT NULL CHECK (`price` >= 0)"
        );
        assert!(p.tail.starts_with(") ENGINE=InnoDB"));
        assert!(p.tail.ends_with("COMMENT='options, (x)'"));
    }

    #[test]
    fn secondary_indexes_are_deferred_in_order() {
        let d = defer(OPTIONS_T, &[]).unwrap();
        let names: Vec<&str> = d.deferred.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["uk_email", "k_prefix", "k_desc"]);
        assert_eq!(d.deferred[2].1, "KEY `k_desc` (`desc_col` DESC,`id`)");
        assert!(!d.create.contains("KEY `uk_email`"));
        assert!(
            d.create
                .contains("  PRIMARY KEY (`id`),\n  CONSTRAINT `chk score`")
        );
        assert!(d.create.ends_with("COMMENT='options, (x)'"));
    }

    #[test]
    fn fulltext_and_spatial_are_deferred_too() {
        let c = "CREATE TABLE `g` (\n  `id` int NOT NULL,\n  `p` point NOT NULL,\n  `b` text,\n  PRIMARY KEY (`id`),\n  SPATIAL KEY `sp` (`p`),\n  FULLTEXT KEY `ft` (`b`)\n) ENGINE=MyISAM";
        let d = defer(c, &[]).unwrap();
        assert_eq!(d.deferred.len(), 2);
        assert_eq!(
            d.create,
            "CREATE TABLE `g` (\n  `id` int NOT NULL,\n  `p` point NOT NULL,\n  `b` text,\n  PRIMARY KEY (`id`)\n) ENGINE=MyISAM"
        );
    }

    #[test]
    fn indexes_a_foreign_key_needs_and_all_after_them_are_kept() {
        let c = "CREATE TABLE `c` (\n  `id` int NOT NULL,\n  `a` int, `p` int, `q` char(2),\n  PRIMARY KEY (`id`),\n  KEY `ka` (`a`),\n  KEY `fk` (`p`,`q`),\n  KEY `kz` (`a`,`p`),\n  CONSTRAINT `f1` FOREIGN KEY (`p`) REFERENCES `other`.`par` (`id`) ON DELETE CASCADE\n) ENGINE=InnoDB";
        let d = defer(c, &[]).unwrap();
        assert_eq!(
            d.deferred.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            vec!["kz"]
        );
        let fks = foreign_keys(c);
        assert_eq!(
            fks,
            vec![ForeignKey {
                columns: vec!["p".into()],
                parent_db: Some("other".into()),
                parent: "par".into(),
                parent_columns: vec!["id".into()],
            }]
        );
    }

    #[test]
    fn parent_side_and_auto_increment_needs_are_kept() {
        let c = "CREATE TABLE `p` (\n  `id` int NOT NULL,\n  `code` char(2) NOT NULL,\n  `n` int NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uk_code` (`id`,`code`),\n  KEY `kn` (`n`),\n  KEY `kx` (`code`)\n) ENGINE=InnoDB";
        // kn (AUTO_INCREMENT) is kept, so is everything before it is not deferred.
        assert_eq!(
            defer(c, &[]).unwrap().deferred,
            vec![("kx".to_string(), "KEY `kx` (`code`)".to_string())]
        );
        // A reference served by the primary key needs nothing.
        let c2 = "CREATE TABLE `p` (\n  `id` int NOT NULL,\n  `code` char(2) NOT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uk_code` (`id`,`code`)\n) ENGINE=InnoDB";
        assert!(defer(c2, &[vec!["id".into(), "code".into()]]).is_none());
        assert_eq!(defer(c2, &[vec!["id".into()]]).unwrap().deferred.len(), 1);
    }

    #[test]
    fn all_indexes_lists_every_secondary_index() {
        let names: Vec<String> = all_indexes(OPTIONS_T).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["uk_email", "k_prefix", "k_desc"]);
    }

    #[test]
    fn tables_without_a_primary_key_keep_their_indexes() {
        let c = "CREATE TABLE `n` (\n  `a` int NOT NULL,\n  UNIQUE KEY `ua` (`a`)\n) ENGINE=InnoDB";
        assert!(defer(c, &[]).is_none());
    }

    #[test]
    fn odd_names_and_partitions() {
        let c = "CREATE TABLE `ta``b'le \"x\"` (\n  `id` int(11) NOT NULL,\n  `order` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `idx ``q'` (`order`)\n) ENGINE=InnoDB COMMENT='a ''(b'' \\\\ c'\n PARTITION BY HASH (`id`)\nPARTITIONS 4";
        let d = defer(c, &[]).unwrap();
        assert_eq!(
            d.deferred,
            vec![(
                "idx `q'".to_string(),
                "KEY `idx ``q'` (`order`)".to_string()
            )]
        );
        assert!(d.create.ends_with("PARTITIONS 4"));
    }

    #[test]
    fn tokens_read_names_through_comments_and_quotes() {
        let t = tokens("/*!50003 DROP FUNCTION IF EXISTS `f``x` */");
        assert_eq!(t[4], Tok::Quoted('`', "f`x".into()));
        assert_eq!(t.len(), 5);
        let t = tokens("CREATE DEFINER=\"root\"@\"localhost\" TRIGGER trg_bi BEFORE");
        assert_eq!(t[t.len() - 2], Tok::Word("trg_bi".into()));
    }
}

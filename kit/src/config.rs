//! Config loading: one TOML file, then environment overrides. `GBC_SIP__LISTEN=0.0.0.0:5070`
//! sets `[sip] listen`; a double underscore separates levels. Values are read as TOML when
//! they parse as such (numbers, booleans, arrays), else as strings.

use std::path::Path;

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config: {0}")]
    Parse(String),
}

fn env_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

/// Applies `GBC_…` variables from `vars` onto `table`.
pub fn apply_env(table: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) {
    for (k, v) in vars {
        let Some(path) = k.strip_prefix("GBC_") else { continue };
        let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
        let Some((last, parents)) = parts.split_last() else { continue };
        let mut cur = Some(&mut *table);
        for p in parents {
            cur = cur.and_then(|t| match t.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
                toml::Value::Table(t) => Some(t),
                _ => None,
            });
        }
        if let Some(t) = cur {
            t.insert(last.clone(), env_value(&v));
        }
    }
}

/// Moves the keys of section `from` (dotted path) into section `to`, keeping any key `to`
/// already has: an old section name keeps working. Returns whether `from` was there.
pub fn rename_section(table: &mut toml::Table, from: &str, to: &str) -> bool {
    let Some(toml::Value::Table(old)) = take_path(table, from) else { return false };
    let mut cur = table;
    for p in to.split('.') {
        let entry = cur.entry(p.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(t) = entry else { return true };
        cur = t;
    }
    for (k, v) in old {
        cur.entry(k).or_insert(v);
    }
    true
}

fn take_path(table: &mut toml::Table, path: &str) -> Option<toml::Value> {
    let (parents, last) = match path.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, path),
    };
    let mut cur = table;
    for p in parents.into_iter().flat_map(|p| p.split('.')) {
        match cur.get_mut(p) {
            Some(toml::Value::Table(t)) => cur = t,
            _ => return None,
        }
    }
    cur.remove(last)
}

/// Loads `T` from the file (if any) with the process environment applied.
pub fn load<T: DeserializeOwned>(path: Option<&Path>) -> Result<T, ConfigError> {
    load_renaming(path, &[]).map(|(t, _)| t)
}

/// `load`, with old section names (`(old, new)`, dotted) read as the new ones. Also returns
/// the old names that were used, for the caller to warn about.
pub fn load_renaming<T: DeserializeOwned>(path: Option<&Path>, renames: &[(&str, &'static str)]) -> Result<(T, Vec<String>), ConfigError> {
    let mut table = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.display().to_string(), source })?;
            toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Parse(e.to_string()))?
        }
        None => toml::Table::new(),
    };
    apply_env(&mut table, std::env::vars());
    let used = renames.iter().filter(|(old, new)| rename_section(&mut table, old, new)).map(|(old, _)| (*old).to_owned()).collect();
    let t = T::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse(e.to_string()))?;
    Ok((t, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct C {
        sip: S,
    }
    #[derive(serde::Deserialize, Debug)]
    struct S {
        listen: String,
        port: u16,
        tags: Vec<String>,
    }

    #[test]
    fn an_old_section_name_is_read_as_the_new_one_without_overriding_it() {
        let mut t: toml::Table = toml::from_str("[api]\nlisten = \"old\"\ntoken = \"t\"\n[sip.api]\nlisten = \"new\"").unwrap();
        assert!(rename_section(&mut t, "api", "sip.api"));
        assert!(!t.contains_key("api"));
        assert_eq!(t["sip"]["api"]["listen"].as_str(), Some("new"), "the new name wins");
        assert_eq!(t["sip"]["api"]["token"].as_str(), Some("t"), "the old section's other keys are kept");
        let mut t: toml::Table = toml::from_str("[api]\ntoken = \"t\"").unwrap();
        assert!(rename_section(&mut t, "api", "sip.api"));
        assert_eq!(t["sip"]["api"]["token"].as_str(), Some("t"), "sections are made as needed");
        assert!(!rename_section(&mut t, "api", "sip.api"), "nothing to move");
    }

    #[test]
    fn env_overrides_nested_keys_with_types() {
        let mut t: toml::Table = toml::from_str("[sip]\nlisten = \"a\"\nport = 1\ntags = []").unwrap();
        apply_env(
            &mut t,
            [
                ("GBC_SIP__LISTEN".to_string(), "0.0.0.0:5070".to_string()),
                ("GBC_SIP__PORT".to_string(), "5070".to_string()),
                ("GBC_SIP__TAGS".to_string(), "[\"x\"]".to_string()),
                ("OTHER".to_string(), "1".to_string()),
            ]
            .into_iter(),
        );
        let c: C = C::deserialize(toml::Value::Table(t)).unwrap();
        assert_eq!(c.sip.listen, "0.0.0.0:5070");
        assert_eq!(c.sip.port, 5070);
        assert_eq!(c.sip.tags, vec!["x"]);
    }
    use serde::Deserialize;
}

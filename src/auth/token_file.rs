//! `--token-auth-file`: static bearer tokens, CSV lines `token,user,uid,"group1,group2"`.

use super::{AuthError, UserInfo, read_file};
use std::collections::HashMap;
use std::path::Path;

/// Tokens by value.
pub struct TokenFile(HashMap<String, UserInfo>);

impl TokenFile {
    /// Reads and parses the file; a malformed line is an error naming it, as upstream.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let bytes = read_file("token-auth-file", path)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            let bad = |reason: &str| AuthError::BadTokenFile {
                path: path.to_path_buf(),
                line: i + 1,
                reason: reason.into(),
            };
            if fields.len() < 3 {
                return Err(bad("expected at least 3 columns: token,user,uid"));
            }
            if fields[0].is_empty() || fields[1].is_empty() {
                return Err(bad("token and user must not be empty"));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let user = UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
                ..Default::default()
            };
            tokens.insert(fields[0].clone(), user);
        }
        Ok(Self(tokens))
    }

    /// The user a token belongs to.
    pub fn get(&self, token: &str) -> Option<&UserInfo> {
        self.0.get(token)
    }
}

/// Splits one CSV line, honouring double quotes (a doubled quote inside quotes is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("never empty").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_groups_column_holds_commas() {
        assert_eq!(
            split_csv(r#"tok,alice,42,"a,b""#),
            vec!["tok", "alice", "42", "a,b"]
        );
    }
}

//! Round-trips Content-Disposition values through Python's standard library parser: the
//! `filename*` value (RFC 2231/8187) when present, else the quoted `filename`.

use std::io::Write;
use std::process::{Command, Stdio};

const SCRIPT: &str = r#"
import json, sys
from email.message import Message
from email.utils import collapse_rfc2231_value
out = []
for value in json.load(sys.stdin):
    m = Message()
    m['Content-Disposition'] = value
    params = m.get_params(header='content-disposition', unquote=True)
    ext = [v for k, v in params if k == 'filename' and isinstance(v, tuple)]
    plain = [v for k, v in params if k == 'filename' and not isinstance(v, tuple)]
    out.append(collapse_rfc2231_value(ext[0]) if ext else plain[0])
json.dump(out, sys.stdout)
"#;

/// The file name a standards-following client reads from each header value.
pub fn parse_disposition(headers: &[String]) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(serde_json::to_string(headers).unwrap().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python parser failed");
    serde_json::from_slice(&output.stdout).unwrap()
}

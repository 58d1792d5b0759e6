//! `-w/--write-out FORMAT`: curl's line after each transfer, on stdout. `%{name}` is
//! a variable (curl's names, those get knows), `%%` a `%`, and `\n`, `\r`, `\t`
//! the control characters, as curl's `tool_writeout.c` reads them.

/// What `-w` can say about one transfer, done or failed.
pub struct Outcome<'a> {
    /// The last response's status; 0 (`000`) when none came.
    pub status: u16,
    /// The URL after redirects.
    pub url: &'a str,
    /// Where the body went; empty when nowhere.
    pub path: &'a str,
    pub bytes: u64,
    pub seconds: f64,
    pub exitcode: u8,
    /// The failure, empty on success.
    pub errormsg: &'a str,
}

/// `format` with its variables and escapes replaced, and the names it did not
/// know (curl warns about each and writes nothing for it).
pub fn expand(format: &str, outcome: &Outcome<'_>) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut unknown = Vec::new();
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        let next = rest[c.len_utf8()..].chars().next();
        match (c, next) {
            ('%', Some('%')) => {
                out.push('%');
                rest = &rest[2..];
            }
            ('%', Some('{')) => match rest[2..].split_once('}') {
                Some((name, after)) => {
                    match value(name, outcome) {
                        Some(v) => out.push_str(&v),
                        None => unknown.push(name.to_string()),
                    }
                    rest = after;
                }
                None => {
                    out.push_str(rest);
                    rest = "";
                }
            },
            ('\\', Some(e @ ('n' | 'r' | 't'))) => {
                out.push(match e {
                    'n' => '\n',
                    'r' => '\r',
                    _ => '\t',
                });
                rest = &rest[2..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    (out, unknown)
}

/// A variable's text in curl's format for it.
fn value(name: &str, o: &Outcome<'_>) -> Option<String> {
    Some(match name {
        "http_code" | "response_code" => format!("{:03}", o.status),
        "url_effective" | "url" => o.url.to_string(),
        "filename_effective" => o.path.to_string(),
        "size_download" => o.bytes.to_string(),
        "time_total" => format!("{:.6}", o.seconds),
        "speed_download" => {
            let speed = if o.seconds > 0.0 {
                o.bytes as f64 / o.seconds
            } else {
                0.0
            };
            format!("{speed:.0}")
        }
        "exitcode" => o.exitcode.to_string(),
        "errormsg" => o.errormsg.to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curls_variables_and_escapes() {
        let o = Outcome {
            status: 0,
            url: "http://h/x",
            path: "x",
            bytes: 10,
            seconds: 2.0,
            exitcode: 7,
            errormsg: "refused",
        };
        let (text, unknown) = expand(
            "%{http_code} %{url_effective} %{size_download}/%{speed_download} %%\\n%{nope}\\q%{open",
            &o,
        );
        assert_eq!(text, "000 http://h/x 10/5 %\n\\q%{open");
        assert_eq!(unknown, ["nope"]);
        assert_eq!(expand("%{exitcode}:%{errormsg}", &o).0, "7:refused");
        assert_eq!(expand("%{time_total}", &o).0, "2.000000");
    }
}

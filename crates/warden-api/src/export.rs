//! CSV for activity exports (RFC 4180 quoting; fields that a spreadsheet
//! would run as a formula are prefixed with a quote mark).

use std::io::Write;

use warden_store::ActivityRow;

pub const CSV_HEADER: &str = "id,time,kind,agent,on_behalf_of,chain,server,tool,arguments,arguments_hash,risk,decision,approver,outcome,latency_us,detail,hash";

pub fn io_error(e: std::io::Error) -> crate::ApiError {
    crate::ApiError::new(
        crate::ErrorCode::Internal,
        format!("the export could not be written: {e}"),
    )
}

fn field(out: &mut impl Write, value: Option<&str>) -> std::io::Result<()> {
    let Some(v) = value else { return Ok(()) };
    let guarded = matches!(v.chars().next(), Some('=' | '+' | '-' | '@'));
    if guarded || v.contains([',', '"', '\n', '\r']) {
        out.write_all(b"\"")?;
        if guarded {
            out.write_all(b"'")?;
        }
        out.write_all(v.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(v.as_bytes())
    }
}

pub fn write_csv_row(out: &mut impl Write, r: &ActivityRow) -> std::io::Result<()> {
    let e = &r.event;
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.time_us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let latency = e.latency_us.map(|l| l.to_string());
    let id = r.id.to_string();
    let cells: [Option<&str>; 17] = [
        Some(&id),
        Some(&time),
        Some(&e.kind),
        e.agent.as_deref(),
        e.on_behalf_of.as_deref(),
        e.chain.as_deref(),
        e.server.as_deref(),
        e.tool.as_deref(),
        e.arguments.as_deref(),
        e.arguments_hash.as_deref(),
        e.risk.as_deref(),
        e.decision.as_deref(),
        e.approver.as_deref(),
        e.outcome.as_deref(),
        latency.as_deref(),
        e.detail.as_deref(),
        Some(&r.hash),
    ];
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        field(out, *c)?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_commas_and_defuses_formulas() {
        let mut out = Vec::new();
        field(&mut out, Some("plain")).expect("write");
        out.push(b'|');
        field(&mut out, Some("a,\"b\"")).expect("write");
        out.push(b'|');
        field(&mut out, Some("=cmd()")).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "plain|\"a,\"\"b\"\"\"|\"'=cmd()\""
        );
    }
}

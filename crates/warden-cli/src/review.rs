//! `warden review`: the access review: every person and agent, with what to
//! look at, and recording that the review was done.

use anyhow::{Result, bail};
use warden_api::{Request, Response};

use crate::{Paths, call};

pub async fn run(paths: &Paths, record: bool, json: bool) -> Result<()> {
    let Response::Review(r) = call(paths, Request::Review { record }).await? else {
        bail!("unexpected answer")
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let date = |us: Option<i64>| {
        us.and_then(|u| time::OffsetDateTime::from_unix_timestamp(u / 1_000_000).ok())
            .map(|t| t.date().to_string())
            .unwrap_or_else(|| "never".into())
    };
    println!("People");
    for p in &r.people {
        println!(
            "  {:<20} {:<7} {:<9} last sign-in {:<12} {} agents",
            p.name,
            p.role,
            p.status,
            date(p.last_login_us),
            p.agents
        );
    }
    println!("Agents");
    for a in &r.agents {
        println!(
            "  {:<20} owner {:<12} {:<10} roles {:<20} last used {:<12} expires {:<12} {}",
            a.name,
            a.owner.as_deref().unwrap_or("(none)"),
            format!("{:?}", a.status).to_lowercase(),
            a.roles.join(","),
            date(a.last_used_us),
            date(a.expires_at_us),
            if a.flags.is_empty() {
                String::new()
            } else {
                format!("⚑ {}", a.flags.join(", "))
            }
        );
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    if r.due {
        println!(
            "\nA review is due (every {} days; last: {}). When done: warden review --record",
            r.interval_days,
            date(r.last_review_at_us)
        );
    } else {
        println!("\nLast review: {}.", date(r.last_review_at_us));
    }
    Ok(())
}

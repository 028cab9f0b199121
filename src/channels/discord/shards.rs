//! Which gateway shards this process runs (DESIGN §9: `shardCount`, `shards`) and how
//! long it waits before its first Identify, so that several processes of one bot never
//! identify faster than the bot's `max_concurrency` allows.
//!
//! Discord allows one Identify per 5 s in each rate-limit bucket, shard `i` being in
//! bucket `i % max_concurrency`. Inside one process serenity's shard queuer already
//! starts the shards one after another, 5 s apart. Across processes nothing would, so a
//! process waits for its turn: processes (assumed to run ranges of equal width, as a
//! deployment that splits `shardCount` evenly does) go in groups whose shards, started
//! side by side, fall into distinct buckets at every step; a group starts when the one
//! before it has identified all its shards. With one shard per process this is
//! Discord's own schedule (shard `i` at `5 s × ⌊i / max_concurrency⌋`).

use std::time::Duration;

use crate::config::DiscordConfig;

/// The time Discord wants between two Identifies in one rate-limit bucket.
pub const IDENTIFY_INTERVAL: Duration = Duration::from_secs(5);

/// Shards `from..=to` of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRange {
    pub from: u32,
    pub to: u32,
    pub total: u32,
}

impl ShardRange {
    /// The range the config asks for; `None` when neither key is set (one process, one
    /// shard, as `Client::start` runs it). `shardCount` alone is every shard.
    pub fn from_config(cfg: &DiscordConfig) -> Result<Option<ShardRange>, String> {
        let range = match (cfg.shard_count, cfg.shards.as_deref()) {
            (None, None) => return Ok(None),
            (None, Some(_)) => {
                return Err("shards needs shardCount, the bot's total number of shards".into());
            }
            (Some(total), None) => ShardRange {
                from: 0,
                to: total.saturating_sub(1),
                total,
            },
            (Some(total), Some(&[from, to])) => ShardRange { from, to, total },
            (Some(_), Some(other)) => {
                return Err(format!(
                    "shards = {other:?} is not a range of two shard ids [from, to]"
                ));
            }
        };
        if range.total == 0 || range.from > range.to || range.to >= range.total {
            return Err(format!(
                "shards = [{}, {}] is not a range of shard ids below shardCount = {}",
                range.from, range.to, range.total
            ));
        }
        Ok(Some(range))
    }

    /// How many shards this process runs.
    /// Whether this range holds the shard Discord delivers `guild`'s events on (a DM,
    /// `None`, on shard 0).
    pub fn holds(&self, guild: Option<u64>) -> bool {
        let shard = guild.map_or(0, |g| (g >> 22) % u64::from(self.total.max(1)));
        (u64::from(self.from)..=u64::from(self.to)).contains(&shard)
    }

    pub fn width(&self) -> u32 {
        self.to - self.from + 1
    }

    /// How long this process waits before its first Identify, given the bot's
    /// `max_concurrency` (0 is read as 1).
    pub fn start_delay(&self, max_concurrency: u64) -> Duration {
        let width = u64::from(self.width());
        let concurrency = max_concurrency.max(1);
        // Processes that may identify side by side, and this one's group.
        let side_by_side = (concurrency / width).max(1);
        let group = (u64::from(self.from) / width) / side_by_side;
        let steps = u32::try_from(group.saturating_mul(width)).unwrap_or(u32::MAX);
        IDENTIFY_INTERVAL.saturating_mul(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: u32, to: u32, total: u32) -> ShardRange {
        ShardRange { from, to, total }
    }

    #[test]
    fn a_range_holds_the_shards_discord_routes_to_it() {
        let r = range(1, 1, 2);
        let guild_on = |shard: u64| (41u64 << 23) | (shard << 22);
        assert!(r.holds(Some(guild_on(1))));
        assert!(!r.holds(Some(guild_on(0))));
        assert!(!r.holds(None), "DMs come on shard 0");
        assert!(range(0, 0, 2).holds(None));
    }

    #[test]
    fn the_config_decides_the_range() {
        let cfg = |count: Option<u32>, shards: Option<[u32; 2]>| DiscordConfig {
            shard_count: count,
            shards: shards.map(Vec::from),
            ..DiscordConfig::default()
        };
        assert_eq!(ShardRange::from_config(&cfg(None, None)), Ok(None));
        assert_eq!(
            ShardRange::from_config(&cfg(Some(4), None)),
            Ok(Some(range(0, 3, 4))),
            "shardCount alone: every shard in this process"
        );
        assert_eq!(
            ShardRange::from_config(&cfg(Some(2), Some([1, 1]))),
            Ok(Some(range(1, 1, 2)))
        );
        for bad in [
            cfg(None, Some([0, 0])),
            cfg(Some(0), None),
            cfg(Some(2), Some([1, 0])),
            cfg(Some(2), Some([0, 2])),
            DiscordConfig {
                shard_count: Some(2),
                shards: Some(vec![0, 1, 1]),
                ..DiscordConfig::default()
            },
        ] {
            assert!(ShardRange::from_config(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_shard_per_process_follows_discords_schedule() {
        let five = IDENTIFY_INTERVAL;
        for mc in [1u64, 2, 16] {
            for shard in 0..40u32 {
                let expected = five * u32::try_from(u64::from(shard) / mc).unwrap();
                assert_eq!(
                    range(shard, shard, 40).start_delay(mc),
                    expected,
                    "shard {shard}, max_concurrency {mc}"
                );
            }
        }
        assert_eq!(range(1, 1, 2).start_delay(2), Duration::ZERO);
        assert_eq!(range(1, 1, 2).start_delay(1), five);
        assert_eq!(range(1, 1, 2).start_delay(0), five, "0 is read as 1");
        assert_eq!(range(0, 3, 4).start_delay(1), Duration::ZERO);
    }

    /// Every deployment of equal ranges, started at once: in each bucket, Identifies
    /// are at least 5 s apart (serenity spaces a process's own shards 5 s apart).
    #[test]
    fn no_bucket_ever_sees_two_identifies_within_five_seconds() {
        for total in 1..=24u32 {
            for width in (1..=total).filter(|w| total % w == 0) {
                for mc in [1u64, 2, 3, 4, 5, 8, 16] {
                    let mut at: Vec<(u64, Duration)> = Vec::new();
                    for from in (0..total).step_by(width as usize) {
                        let r = range(from, from + width - 1, total);
                        let start = r.start_delay(mc);
                        for k in 0..width {
                            at.push((u64::from(from + k), start + IDENTIFY_INTERVAL * k));
                        }
                    }
                    for bucket in 0..mc {
                        let mut times: Vec<Duration> = at
                            .iter()
                            .filter(|(s, _)| s % mc == bucket)
                            .map(|(_, t)| *t)
                            .collect();
                        times.sort();
                        for pair in times.windows(2) {
                            assert!(
                                pair[1] - pair[0] >= IDENTIFY_INTERVAL,
                                "total {total}, width {width}, max_concurrency {mc}: {at:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

//! What requests cost in the resources that transfer to Spin and to Azure:
//! component instances, chained hops, key-value operations and commits,
//! SQLite connections, statements and commits, variable reads.
//!
//! Timings differ between this host and Spin (docs/performance.md); these
//! counts do not, because they come from what the components ask for.
//!
//! A commit is "on the critical path" when no instance in the chain that led
//! to it had handed over its response yet: the client is still waiting for
//! it. Work a component does after answering (audit-api advancing its chain
//! head) is counted apart.

use std::ops::Sub;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A snapshot of the counters. Subtract two snapshots to get what happened
/// between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Costs {
    pub instances: u64,
    pub chained_hops: u64,
    pub kv_operations: u64,
    pub kv_commits: u64,
    pub kv_commits_on_path: u64,
    pub sqlite_opens: u64,
    pub sqlite_statements: u64,
    pub sqlite_commits: u64,
    pub sqlite_commits_on_path: u64,
    pub variable_reads: u64,
}

impl Sub for Costs {
    type Output = Costs;
    fn sub(self, earlier: Costs) -> Costs {
        Costs {
            instances: self.instances - earlier.instances,
            chained_hops: self.chained_hops - earlier.chained_hops,
            kv_operations: self.kv_operations - earlier.kv_operations,
            kv_commits: self.kv_commits - earlier.kv_commits,
            kv_commits_on_path: self.kv_commits_on_path - earlier.kv_commits_on_path,
            sqlite_opens: self.sqlite_opens - earlier.sqlite_opens,
            sqlite_statements: self.sqlite_statements - earlier.sqlite_statements,
            sqlite_commits: self.sqlite_commits - earlier.sqlite_commits,
            sqlite_commits_on_path: self.sqlite_commits_on_path - earlier.sqlite_commits_on_path,
            variable_reads: self.variable_reads - earlier.variable_reads,
        }
    }
}

impl Costs {
    /// Durable commits the client waited for: the figure that fsync cost
    /// multiplies on a real disk.
    pub fn commits_on_path(&self) -> u64 {
        self.kv_commits_on_path + self.sqlite_commits_on_path
    }
}

#[derive(Default)]
pub(crate) struct CostMeter {
    instances: AtomicU64,
    chained_hops: AtomicU64,
    kv_operations: AtomicU64,
    kv_commits: AtomicU64,
    kv_commits_on_path: AtomicU64,
    sqlite_opens: AtomicU64,
    sqlite_statements: AtomicU64,
    sqlite_commits: AtomicU64,
    sqlite_commits_on_path: AtomicU64,
    variable_reads: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl CostMeter {
    pub fn snapshot(&self) -> Costs {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        Costs {
            instances: get(&self.instances),
            chained_hops: get(&self.chained_hops),
            kv_operations: get(&self.kv_operations),
            kv_commits: get(&self.kv_commits),
            kv_commits_on_path: get(&self.kv_commits_on_path),
            sqlite_opens: get(&self.sqlite_opens),
            sqlite_statements: get(&self.sqlite_statements),
            sqlite_commits: get(&self.sqlite_commits),
            sqlite_commits_on_path: get(&self.sqlite_commits_on_path),
            variable_reads: get(&self.variable_reads),
        }
    }

    pub fn instance(&self) {
        bump(&self.instances);
    }
    pub fn chained_hop(&self) {
        bump(&self.chained_hops);
    }
    pub fn kv_operation(&self, commits: u64, lineage: &Lineage) {
        bump(&self.kv_operations);
        self.kv_commits.fetch_add(commits, Ordering::Relaxed);
        if !lineage.answered() {
            self.kv_commits_on_path
                .fetch_add(commits, Ordering::Relaxed);
        }
    }
    pub fn sqlite_open(&self) {
        bump(&self.sqlite_opens);
    }
    pub fn sqlite_statement(&self) {
        bump(&self.sqlite_statements);
    }
    pub fn sqlite_commit(&self, lineage: &Lineage) {
        bump(&self.sqlite_commits);
        if !lineage.answered() {
            bump(&self.sqlite_commits_on_path);
        }
    }
    pub fn variable_read(&self) {
        bump(&self.variable_reads);
    }
}

/// What an instance inherits from the request that led to it: the "has
/// answered" flags of every instance on the way, and, with telemetry on,
/// the trace id of the span Spin opened for the client's request.
#[derive(Clone, Default)]
pub(crate) struct Lineage {
    flags: Vec<Arc<AtomicBool>>,
    trace_id: Option<String>,
}

impl Lineage {
    /// The root of a client request traced as `trace_id` (telemetry on).
    pub fn traced(trace_id: Option<String>) -> Lineage {
        Lineage {
            flags: Vec::new(),
            trace_id,
        }
    }

    /// The lineage of a new instance called by an instance with this one.
    pub fn child(&self) -> (Lineage, Arc<AtomicBool>) {
        let own = Arc::new(AtomicBool::new(false));
        let mut flags = self.flags.clone();
        flags.push(own.clone());
        let child = Lineage {
            flags,
            trace_id: self.trace_id.clone(),
        };
        (child, own)
    }

    /// Whether the client has been answered by any instance on the way:
    /// then nothing this instance does is waited for.
    pub fn answered(&self) -> bool {
        self.flags.iter().any(|f| f.load(Ordering::SeqCst))
    }

    /// The trace Spin's spans of this request belong to (telemetry on).
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_after_an_ancestor_answered_is_off_the_critical_path() {
        let root = Lineage::default();
        let (gateway, gateway_answered) = root.child();
        let (audit, audit_answered) = gateway.child();
        let (store, _) = audit.child();
        let meter = CostMeter::default();
        meter.sqlite_commit(&store);
        audit_answered.store(true, Ordering::SeqCst);
        meter.sqlite_commit(&store);
        assert!(!gateway.answered());
        gateway_answered.store(true, Ordering::SeqCst);
        meter.kv_operation(1, &gateway);
        let costs = meter.snapshot();
        assert_eq!((costs.sqlite_commits, costs.sqlite_commits_on_path), (2, 1));
        assert_eq!((costs.kv_commits, costs.kv_commits_on_path), (1, 0));
        assert_eq!(costs.commits_on_path(), 1);
        assert_eq!((costs - costs), Costs::default());
    }
}

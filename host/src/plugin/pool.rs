//! Where plugin instances come from: the engines, the pooling allocator rules plugins are
//! instantiated from, and the gate that keeps evaluations within the pool.
//!
//! Drivers keep one instance per device for as long as the device runs (a few dozen at a
//! gate, rebuilt only after a fault), so they gain nothing from a pool and would hold its slots
//! for good: they are allocated on demand. Rules plugins get a fresh instance for every
//! evaluation (see [`super::rules`]), two or three per passage, so the cost of making one is
//! paid per truck: they are instantiated from wasmtime's pooling allocator, which keeps each
//! slot's memory mapping, copy-on-write image and tables between instances and only resets
//! them, instead of mapping and unmapping a 4 GiB reservation per call.
//!
//! The pool is sized for a gate, not a server ([`RulesPool`]): a few dozen slots of a memory
//! size taken from the rules manifests, so it reserves a few GiB of address space, not the
//! terabytes of wasmtime's defaults. A rule set whose manifest asks for more memory than a slot
//! holds runs on on-demand instances instead, and if the pool cannot be created at all (an
//! address-space limit on the daemon, say) every rules plugin does, with the reason logged.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Core instances one component may contain in the pool. A Rust component for wasm32-wasip2
/// is its module plus a few small shims; this leaves room for a composed one.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Linear memories one component may contain in the pool (a Rust component has one).
const MEMORIES_PER_COMPONENT: u32 = 2;
/// Tables one component may contain in the pool (its module's and the shims').
const TABLES_PER_COMPONENT: u32 = 8;
/// Tables one core module may define (a Rust module defines one).
const TABLES_PER_MODULE: u32 = 2;

/// The sizing of the pool rules plugins are instantiated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesPool {
    /// Rules instances that can exist at once. An instance lives for one evaluation (or one
    /// self-description at load), so this bounds concurrent evaluations, not loaded plugins;
    /// an evaluation beyond it waits for a slot rather than failing.
    pub instances: u32,
    /// The largest linear memory of a pooled instance, MiB. A rules plugin whose manifest's
    /// `memory-mb` is larger runs on on-demand instances. Each slot reserves this much address
    /// space (plus wasmtime's guard region), so the pool reserves about
    /// `instances × (memory_mb + 32) MiB`.
    pub memory_mb: u32,
}

impl Default for RulesPool {
    /// 32 slots of 64 MiB: every lane of a large gate evaluating at once, with room for loads
    /// and hot swaps; twice the rules default memory limit (32 MiB) and four times what the
    /// shipped rule sets declare (16 MiB). About 3 GiB of address space.
    fn default() -> Self {
        RulesPool {
            instances: 32,
            memory_mb: 64,
        }
    }
}

impl RulesPool {
    /// [`RulesPool::memory_mb`] in bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb)
            .unwrap_or(usize::MAX >> 20)
            .saturating_mul(1 << 20)
    }
}

/// How this runtime allocates rules instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesAllocation {
    /// From a pool of this size.
    Pooled(RulesPool),
    /// On demand, one mapping per instance: no pool was asked for, or it could not be created.
    OnDemand {
        /// Why.
        reason: String,
    },
}

/// The engine settings every plugin runs under.
pub(crate) fn base_config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(true)
        .parallel_compilation(true);
    config
}

/// An engine whose instances come from a pool sized by `pool`.
pub(crate) fn pooled_engine(pool: &RulesPool) -> Result<Engine, String> {
    if pool.instances == 0 || pool.memory_mb == 0 {
        return Err(format!("the pool is empty ({pool:?})"));
    }
    let memory = pool.memory_bytes();
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_component_instances(pool.instances)
        .total_core_instances(pool.instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(pool.instances.saturating_mul(MEMORIES_PER_COMPONENT))
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_tables(pool.instances.saturating_mul(TABLES_PER_COMPONENT))
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_tables_per_module(TABLES_PER_MODULE)
        .max_memory_size(memory);
    // Memory kept resident (reset with memset instead of madvise) was measured at 64 KiB,
    // 256 KiB and 2 MiB: no gain at the first two, and 2 MiB cost more (the memset) than the
    // page faults it saves, so wasmtime's default (none) stays.
    let mut config = base_config();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
        // A slot reserves what its memory may grow to, not 4 GiB: the price is a bounds check
        // on memory accesses, which benches/plugins.rs could not tell apart from noise (a
        // passage judged by cn-baseline + weight-check: 136–158 µs with 64 MiB slots,
        // 144–149 µs with 4 GiB ones), the gain a pool of 3 GiB of address space instead of
        // 129 GiB.
        .memory_reservation(memory as u64);
    Engine::new(&config).map_err(|e| format!("{e:#}"))
}

/// Counts the pool's free slots, so that an evaluation waits for one instead of failing with
/// "pool exhausted", which would be counted as the plugin's fault.
pub(crate) struct Slots {
    free: Mutex<u32>,
    freed: Condvar,
}

impl Slots {
    pub(crate) fn new(count: u32) -> Self {
        Slots {
            free: Mutex::new(count),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free slot and holds it until the permit is dropped. Drop the permit after
    /// the store whose instance used the slot.
    pub(crate) fn acquire(&self) -> SlotPermit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        SlotPermit { slots: self }
    }
}

/// A held pool slot.
pub(crate) struct SlotPermit<'a> {
    slots: &'a Slots,
}

impl Drop for SlotPermit<'_> {
    fn drop(&mut self) {
        *self.slots.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.slots.freed.notify_one();
    }
}

/// Where one plugin's instances come from: the engine it was compiled for, the pool's slot
/// gate when that engine pools, and the epoch tick its time limits count in.
#[derive(Clone)]
pub(crate) struct Home {
    pub(crate) engine: Engine,
    pub(crate) slots: Option<Arc<Slots>>,
    pub(crate) tick: Duration,
}

impl Home {
    /// Holds a pool slot for one instance, when this home pools.
    pub(crate) fn slot(&self) -> Option<SlotPermit<'_>> {
        self.slots.as_deref().map(Slots::acquire)
    }

    /// Whether instances come from the pool.
    pub(crate) fn pooled(&self) -> bool {
        self.slots.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pool_can_be_created() {
        pooled_engine(&RulesPool::default()).unwrap();
    }

    #[test]
    fn a_pool_that_cannot_exist_says_why() {
        let empty = pooled_engine(&RulesPool {
            instances: 0,
            memory_mb: 64,
        })
        .err()
        .unwrap();
        assert!(empty.contains("the pool is empty"), "{empty}");
        // More address space than a 64-bit process has.
        let huge = pooled_engine(&RulesPool {
            instances: u32::MAX,
            memory_mb: u32::MAX,
        })
        .err()
        .unwrap();
        assert!(!huge.is_empty());
    }

    #[test]
    fn a_full_pool_makes_the_next_caller_wait_for_a_slot() {
        let slots = Arc::new(Slots::new(1));
        let held = slots.acquire();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let slots = slots.clone();
            std::thread::spawn(move || {
                let _slot = slots.acquire();
                tx.send(()).unwrap();
            })
        };
        // The waiter cannot have its slot while this one is held...
        assert!(rx.try_recv().is_err());
        drop(held);
        // ...and gets it once it is given back.
        rx.recv().unwrap();
        waiter.join().unwrap();
        assert_eq!(*slots.free.lock().unwrap(), 1);
    }
}

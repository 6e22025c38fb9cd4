//! Peak wasm linear memory per request, measured with wasmtime's
//! `ResourceLimiter` (issue 9 asks the bench for it; the goal is ≤ 32 MiB
//! per report request).
//!
//! Every request's store gets a [`MemoryMeter`] as its limiter. It never
//! refuses anything: growth is still bounded only by each memory's own
//! maximum and wasmtime's default instance/table/memory counts, exactly as
//! without a limiter. It only adds up the bytes the instance's memories
//! were created with and grew by, and raises its component's peak in the
//! server's [`MemoryPeaks`] as soon as a growth is allowed (the store is
//! dropped in a task that may end after the client has read the response,
//! so recording at drop would race a reader).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use wasmtime::ResourceLimiter;

/// The largest linear memory any single request of each component reached
/// since the last [`MemoryPeaks::take`]. One per served app, read with
/// [`crate::Server::memory_peaks`].
#[derive(Debug, Default)]
pub struct MemoryPeaks {
    /// Fixed at `serve` (one entry per component), so requests never lock.
    by_component: HashMap<String, Arc<AtomicUsize>>,
}

impl MemoryPeaks {
    pub(crate) fn new<'a>(components: impl IntoIterator<Item = &'a str>) -> Self {
        MemoryPeaks { by_component: components.into_iter().map(|id| (id.to_string(), Arc::default())).collect() }
    }

    /// A fresh meter for one request to `component` (a component the app
    /// does not serve gets a meter that records nowhere).
    pub(crate) fn meter(&self, component: &str) -> MemoryMeter {
        MemoryMeter { sink: self.by_component.get(component).cloned().unwrap_or_default(), total: 0, last_growth: 0 }
    }

    /// The peak bytes per component that ran since the last call, and
    /// resets them, so a caller can measure one route at a time.
    pub fn take(&self) -> HashMap<String, usize> {
        self.by_component.iter().map(|(id, peak)| (id.clone(), peak.swap(0, Ordering::Relaxed))).filter(|(_, peak)| *peak > 0).collect()
    }
}

/// The limiter of one request's store.
pub struct MemoryMeter {
    sink: Arc<AtomicUsize>,
    /// Bytes of all of this instance's linear memories together.
    total: usize,
    /// The bytes the last allowed growth added, so that a growth that then
    /// fails (the OS refused) is not counted in later totals.
    last_growth: usize,
}

impl ResourceLimiter for MemoryMeter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Wasmtime fails a growth past the memory's maximum even when the
        // limiter allows it; such a growth never happens, so is not counted.
        if maximum.is_some_and(|max| desired > max) {
            self.last_growth = 0;
            return Ok(true);
        }
        // `current` is 0 when a memory is created, so this sums every memory
        // of the instance (a component may have more than one).
        self.last_growth = desired.saturating_sub(current);
        self.total = self.total.saturating_add(self.last_growth);
        self.sink.fetch_max(self.total, Ordering::Relaxed);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The recorded peak may include this growth (it was published when
        // allowed); only an allocation failure of the host gets here.
        self.total = self.total.saturating_sub(std::mem::take(&mut self.last_growth));
        Ok(())
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 65_536;

    #[test]
    fn sums_memories_keeps_the_peak_per_component_and_resets_on_take() {
        let peaks = MemoryPeaks::new(["a", "b"]);
        let mut first = peaks.meter("a");
        assert!(first.memory_growing(0, 17 * PAGE, None).unwrap());
        assert!(first.memory_growing(0, PAGE, Some(PAGE)).unwrap());
        assert!(first.memory_growing(17 * PAGE, 20 * PAGE, None).unwrap());
        // A smaller later request does not lower the component's peak.
        let mut second = peaks.meter("a");
        assert!(second.memory_growing(0, 2 * PAGE, None).unwrap());
        assert_eq!(peaks.take(), HashMap::from([("a".to_string(), 21 * PAGE)]));
        assert!(peaks.take().is_empty());
    }

    #[test]
    fn growth_that_cannot_happen_is_not_counted_and_nothing_is_refused() {
        let peaks = MemoryPeaks::new(["a"]);
        let mut meter = peaks.meter("a");
        assert!(meter.memory_growing(0, PAGE, Some(2 * PAGE)).unwrap());
        assert!(meter.memory_growing(PAGE, 3 * PAGE, Some(2 * PAGE)).unwrap());
        assert!(meter.memory_growing(PAGE, 8 * PAGE, None).unwrap());
        meter.memory_grow_failed(wasmtime::format_err!("out of memory")).unwrap();
        assert!(meter.memory_growing(PAGE, 2 * PAGE, None).unwrap());
        // 1 page, the 8-page growth published then failed, then 2 pages.
        assert_eq!(peaks.take()["a"], 8 * PAGE);
        assert!(meter.table_growing(0, usize::MAX, None).unwrap());
    }
}

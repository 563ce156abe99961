//! Splitting one calculation over a few threads without changing its result.

use std::ops::Range;

/// `f` of each chunk of `0..len` (chunks of `chunk` items, the last shorter), in order, run on
/// up to `threads` scoped threads, each taking a contiguous run of chunks. The chunking does not
/// depend on `threads`, so neither does the result.
pub fn map_chunks<T: Send>(len: usize, chunk: usize, threads: usize, f: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    let chunk = chunk.max(1);
    let ranges: Vec<Range<usize>> = (0..len.div_ceil(chunk))
        .map(|c| c * chunk..((c + 1) * chunk).min(len))
        .collect();
    let threads = threads.clamp(1, ranges.len().max(1));
    if threads == 1 {
        return ranges.into_iter().map(f).collect();
    }
    let per_thread = ranges.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let mut groups = ranges.chunks(per_thread);
        let own = groups.next().unwrap_or_default();
        let handles: Vec<_> = groups
            .map(|group| scope.spawn(move || group.iter().cloned().map(f).collect::<Vec<T>>()))
            .collect();
        // The calling thread does the first run instead of waiting.
        let mut results: Vec<T> = own.iter().cloned().map(f).collect();
        for handle in handles {
            results.extend(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_back_in_order_for_any_thread_count() {
        for threads in 1..6 {
            let sums = map_chunks(103, 10, threads, |r| r.sum::<usize>());
            assert_eq!(sums.len(), 11);
            assert_eq!(sums[0], 45);
            assert_eq!(sums[10], 100 + 101 + 102);
            assert_eq!(sums.iter().sum::<usize>(), (0..103).sum());
        }
        assert!(map_chunks(0, 10, 4, |r| r.len()).is_empty());
    }
}

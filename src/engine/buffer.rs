//! A connection's input buffer, the pool that lends buffers only to connections that are
//! reading, so an idle connection holds no buffer at all, and the pool of response buffers the
//! loop lends to the encoder.
//! Owns the bytes read but not yet parsed, and empty buffers. Never parses or encodes.

/// Size of a fresh input buffer: one page, enough for most request heads (a longer head
/// grows it), and what a connection with a partial head holds.
const BUFFER_SIZE: usize = 4 * 1024;
/// Buffers kept for reuse at most.
const POOL_MAX: usize = 256;
/// Largest buffer kept for reuse (one grown to read a request body).
const KEEP_MAX: usize = 128 * 1024;
/// Grown buffers kept at most, so the pool holds at most a few MiB.
const LARGE_MAX: usize = 16;

/// Response buffers kept for reuse at most.
const OUT_POOL_MAX: usize = 256;
/// Largest response buffer kept for reuse: a head, with a small body copied behind it. With
/// [`OUT_POOL_MAX`], the pool holds at most 1 MiB.
const OUT_KEEP_MAX: usize = 4 * 1024;

/// Bytes received and not yet consumed: `data[start..end]`.
#[derive(Debug, Default)]
pub(crate) struct InBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl InBuf {
    /// The unconsumed bytes.
    pub(crate) fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops the first `n` unconsumed bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Room to read into, at least `min` bytes: borrows a buffer from `pool` if this one has
    /// none, moves unconsumed bytes to the front, or grows.
    pub(crate) fn spare(&mut self, pool: &mut BufferPool, min: usize) -> &mut [u8] {
        if self.data.is_empty() {
            self.data = pool.take_at_least(min);
        }
        if self.data.len() - self.end < min {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.data.len() - self.end < min && self.start == self.end {
                // Nothing is buffered: trade this buffer for a kept grown one if there is one.
                let bigger = pool.take_at_least(min);
                if bigger.len() >= min {
                    let small = std::mem::replace(&mut self.data, bigger);
                    pool.give(small);
                } else {
                    pool.give(bigger);
                }
                self.start = 0;
                self.end = 0;
            }
            if self.data.len() - self.end < min {
                let grown = (self.data.len() * 2).max(self.end + min);
                self.data.resize(grown, 0);
            }
        }
        &mut self.data[self.end..]
    }

    /// Marks `n` bytes of the spare room as filled.
    pub(crate) fn filled_more(&mut self, n: usize) {
        self.end += n;
    }

    /// Gives the buffer back to `pool` if nothing is left in it.
    pub(crate) fn release_if_empty(&mut self, pool: &mut BufferPool) {
        if self.is_empty() && !self.data.is_empty() {
            pool.give(std::mem::take(&mut self.data));
            self.clear();
        }
    }
}

/// Input buffers kept for reuse by the I/O loop.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Vec<Vec<u8>>,
    large: Vec<Vec<u8>>,
}

impl BufferPool {
    fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| vec![0; BUFFER_SIZE])
    }

    /// A buffer of at least `min` bytes, a kept grown one when there is one.
    fn take_at_least(&mut self, min: usize) -> Vec<u8> {
        match self.large.iter().position(|b| b.len() >= min) {
            Some(i) => self.large.swap_remove(i),
            None => self.take(),
        }
    }

    fn give(&mut self, buffer: Vec<u8>) {
        // A buffer grown for a body is kept too (a few), so the next upload neither reallocates
        // nor zeroes it again.
        if buffer.len() == BUFFER_SIZE && self.free.len() < POOL_MAX {
            self.free.push(buffer);
        } else if buffer.len() > BUFFER_SIZE && buffer.len() <= KEEP_MAX && self.large.len() < LARGE_MAX {
            self.large.push(buffer);
        }
    }
}

/// Empty response buffers, lent by the I/O loop to whoever encodes the next response (a worker,
/// with the job; the loop itself, for its own answers) and given back once the response is
/// written. A buffer is allocated and freed by the loop's thread only, and in the steady state
/// not at all: a worker encoding into a buffer it did not allocate never frees it either.
#[derive(Debug, Default)]
pub(crate) struct OutPool {
    free: Vec<Vec<u8>>,
}

impl OutPool {
    /// An empty buffer: a kept one, or a new one without capacity (the encoder sizes it).
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_default()
    }

    /// Keeps `buffer` for reuse if it is small and the pool has room; drops it otherwise.
    pub(crate) fn give(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() > 0 && buffer.capacity() <= OUT_KEEP_MAX && self.free.len() < OUT_POOL_MAX {
            buffer.clear();
            self.free.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_pool_lends_back_kept_buffers_cleared_and_drops_large_ones() {
        let mut pool = OutPool::default();
        assert_eq!(pool.take().capacity(), 0, "an empty pool lends a buffer without capacity");
        let mut small = Vec::with_capacity(512);
        small.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        let small_ptr = small.as_ptr();
        pool.give(small);
        pool.give(Vec::with_capacity(OUT_KEEP_MAX + 1));
        pool.give(Vec::new());
        let lent = pool.take();
        assert!(lent.is_empty());
        assert_eq!(lent.as_ptr(), small_ptr, "the kept buffer is lent again");
        assert_eq!(pool.take().capacity(), 0, "the large and the empty buffer were not kept");
    }

    #[test]
    fn out_pool_keeps_at_most_its_bound() {
        let mut pool = OutPool::default();
        for _ in 0..OUT_POOL_MAX + 10 {
            pool.give(Vec::with_capacity(64));
        }
        assert_eq!(pool.free.len(), OUT_POOL_MAX);
    }
}

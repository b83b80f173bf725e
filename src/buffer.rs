//! A connection's input buffer, and the pool that lends buffers only to connections that are
//! reading, so an idle connection holds no buffer at all.

/// Size of a fresh input buffer.
const BUFFER_SIZE: usize = 8 * 1024;
/// Buffers kept for reuse at most.
const POOL_MAX: usize = 256;

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
            self.data = pool.take();
        }
        if self.data.len() - self.end < min {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
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
}

impl BufferPool {
    fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| vec![0; BUFFER_SIZE])
    }

    fn give(&mut self, buffer: Vec<u8>) {
        if self.free.len() < POOL_MAX && buffer.len() == BUFFER_SIZE {
            self.free.push(buffer);
        }
    }
}

//! Completions: a round's results applied in order, and what a failed
//! operation means.

use rustix::io::Errno;

use super::{IoUring, Op, Registered, NOTIF_USAGE_ZC_COPIED, SLOTS};
use crate::choice::Engine;
use crate::engine::{sink_closed, triage, Cursor, Side, Step, Verdict};
use crate::report::Syscall;
use crate::Error;

impl IoUring {
    /// Applies a round's results in order; `Some` ends the pump.
    pub(super) fn account(
        &mut self,
        cur: &mut Cursor,
    ) -> Result<Option<Result<Step, Error>>, Error> {
        for (i, op) in self.ops.iter().enumerate() {
            let (result, _) = self.results[i].expect("every operation completed");
            if result == -libc::ECANCELED {
                // An earlier operation of the chain fell short: the rest was not run.
                continue;
            }
            if result < 0 {
                let errno = Errno::from_raw_os_error(-result);
                let op = *op;
                return Ok(self.failed(op, errno, cur));
            }
            let n = result as usize;
            match *op {
                Op::In { .. } | Op::Direct { .. } | Op::Read { .. } if n == 0 => cur.src_eof = true,
                Op::In { .. } => {
                    cur.took(n);
                    self.pipe.as_mut().expect("In needs the pipe").held += n;
                }
                Op::Out { len } | Op::Send { len, .. } if n == 0 && len > 0 => {
                    return Err(sink_closed(Engine::IoUring))
                }
                Op::Out { .. } => {
                    self.started = true;
                    self.pipe.as_mut().expect("Out needs the pipe").held -= n;
                    cur.moved += n as u64;
                }
                Op::Direct { .. } => {
                    self.started = true;
                    cur.took(n);
                    cur.moved += n as u64;
                }
                Op::Read { slot, .. } => {
                    cur.took(n);
                    self.zc.as_mut().expect("Read needs the buffers").pending[slot] = 0..n;
                }
                Op::Send { slot, .. } => {
                    self.started = true;
                    let reg = self.zc.as_mut().expect("Send needs the buffers");
                    let pending = &mut reg.pending[slot];
                    pending.start += n;
                    cur.moved += n as u64;
                    if pending.start == pending.end {
                        reg.current = (slot + 1) % SLOTS;
                    }
                }
            }
        }
        Ok(None)
    }

    /// What a failed operation means, by the shared triage: `None` carries on.
    pub(super) fn failed(
        &mut self,
        op: Op,
        errno: Errno,
        cur: &mut Cursor,
    ) -> Option<Result<Step, Error>> {
        let held = self.pipe.as_ref().map_or(0, |p| p.held)
            + self
                .zc
                .as_ref()
                .map_or(0, |reg| reg.pending.iter().map(|p| p.len()).sum());
        let name = match op {
            Op::In { .. } | Op::Out { .. } | Op::Direct { .. } => "IORING_OP_SPLICE",
            Op::Read { .. } => "IORING_OP_READ_FIXED",
            Op::Send { .. } => "IORING_OP_SEND_ZC",
        };
        let error = || Error::Io {
            engine: Engine::IoUring,
            syscall: name,
            cause: errno.into(),
        };
        match triage(Engine::IoUring, Syscall::IoUringEnter, errno, self.started) {
            Verdict::Retry => None,
            // Bytes held (in the pipe, or read into a buffer) go back to a positional
            // source, and the next engine starts from them; a stream cannot take them
            // back.
            Verdict::Fallback(reason) if held == 0 || cur.src_pos.is_some() => {
                cur.give_back(held);
                if let Some(pipe) = &mut self.pipe {
                    pipe.held = 0;
                }
                if let Some(reg) = &mut self.zc {
                    reg.pending.fill(0..0);
                }
                Some(Ok(Step::Fallback(reason)))
            }
            Verdict::Fallback(_) | Verdict::Fail(_) => Some(Err(error())),
            Verdict::WouldBlock => Some(Ok(Step::WouldBlock(match op {
                Op::In { .. } | Op::Read { .. } => Side::Source,
                Op::Out { .. } | Op::Send { .. } => Side::Sink,
                Op::Direct { .. } => Side::Either,
            }))),
        }
    }
}

impl Registered {
    /// Whether `slot` may be read into: sent out and released by the kernel.
    pub(super) fn free(&self, slot: usize) -> bool {
        self.pending[slot].is_empty() && !self.sends.iter().any(|s| s.slot == slot)
    }

    /// Records a completion of the send tagged `tag` (its result's flags, or its
    /// notification's result), and forgets the send once it is settled.
    pub(super) fn completed(
        &mut self,
        tag: u64,
        notification: Option<i32>,
        more: bool,
        cur: &mut Cursor,
    ) {
        let Some(i) = self.sends.iter().position(|s| s.tag == tag) else {
            return;
        };
        let send = &mut self.sends[i];
        match notification {
            Some(result) => {
                send.notified = true;
                send.copied = result & NOTIF_USAGE_ZC_COPIED != 0;
            }
            None => {
                send.more = Some(more);
                if more {
                    cur.zerocopy.sends += 1;
                }
            }
        }
        match (send.more, send.notified) {
            (Some(true), true) => {
                cur.zerocopy.completions += 1;
                if send.copied {
                    cur.zerocopy.copied += 1;
                }
                self.sends.swap_remove(i);
            }
            (Some(false), _) => {
                self.sends.swap_remove(i);
            }
            _ => {}
        }
    }
}

//! What an IPI carries: whose handler runs it (the scheme's or the arch's) and the
//! operation code that handler defines. Sending and receiving are [`crate::smp`]'s.

/// Whom an IPI is for: the scheme's handler or the arch's, with an operation code each
/// defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipi {
    /// Handled by `Scheme::handle_ipi`.
    Scheme(u8),
    /// Handled by `Arch::handle_ipi`.
    Arch(u8),
}

impl Ipi {
    pub(crate) fn encode(self) -> u64 {
        match self {
            Ipi::Scheme(op) => 0x100 | op as u64,
            Ipi::Arch(op) => 0x200 | op as u64,
        }
    }

    pub(crate) fn decode(w: u64) -> Option<Ipi> {
        match w >> 8 {
            1 => Some(Ipi::Scheme(w as u8)),
            2 => Some(Ipi::Arch(w as u8)),
            _ => None,
        }
    }
}

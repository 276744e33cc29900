//! Pure values and rules of declarations (月度申报): months and their open window, lines and
//! their validation against the standard, the monthly caps, the review state machine, and who
//! may do what. No I/O, no async: every rule is unit-tested here.

pub mod authz;
pub mod declaration;
pub mod month;

pub use declaration::{
    Adjustment, CapExceeded, Decision, Line, LineInput, ReviewError, Status, Violation,
};
pub use month::Month;

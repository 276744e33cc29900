//! Database migrations, one migrator per service database (DESIGN.md §6).
//!
//! Every migrator lists [`jifen_eventbus::migration::all`] first (the `outbox` and `inbox`
//! tables), then the service's own tables. Migrations are plain SQL run with
//! `execute_unprepared`, so what the database holds is readable in one place.
//!
//! * [`MembersMigrator`]: the `jifen_members` database of the members service.
//! * [`DeclarationsMigrator`]: the `jifen_declarations` database of the declarations service.
//! * [`EvaluationsMigrator`]: the `jifen_evaluations` database of the evaluations service.
//! * [`GradingMigrator`]: the `jifen_grading` database of the grading service.

pub mod declarations;
pub mod evaluations;
pub mod grading;
pub mod members;

pub use declarations::DeclarationsMigrator;
pub use evaluations::EvaluationsMigrator;
pub use grading::GradingMigrator;
pub use members::MembersMigrator;

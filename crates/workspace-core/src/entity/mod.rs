//! sea-orm entities for the two tables of SPEC §3. The schema itself (including the partial
//! unique index on live paths) is created by the `workspace-migrations` crate.

pub mod user_workspace;
pub mod user_workspace_file;

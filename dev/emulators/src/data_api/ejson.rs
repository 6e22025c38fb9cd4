//! Extended JSON in and out, as the Data API documents it: the gateway's
//! (one implementation for the emulator, its store files and the gateway).

pub use gateway::ejson::*;

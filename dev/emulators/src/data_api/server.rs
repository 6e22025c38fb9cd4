//! The HTTP face of the Data API emulator: the gateway's HTTP layer
//! (gateway::http: routes, keys, Content-Type/Accept, EJSON, body limit,
//! envelope, `/healthz`) over the emulator's engine, so the emulator and the
//! gateway answer alike by construction. [`crate::faults::Controls`] wraps
//! it in [`crate::start`].

use bson::Document;
use gateway::{ActionRequest, ApiError, Backend};

use super::DataApi;

impl Backend for DataApi {
    async fn execute(&self, req: ActionRequest) -> Result<Document, ApiError> {
        self.run(req)
    }

    /// The engine is in process: it always answers.
    async fn health(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

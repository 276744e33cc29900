//! Generated types of every jifen protobuf package. Nothing hand-written lives here but the
//! module tree and the descriptor set used for gRPC server reflection.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Encoded `FileDescriptorSet` of every package, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/jifen_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("jifen.common.v1");
    }
}

pub mod members {
    pub mod v1 {
        tonic::include_proto!("jifen.members.v1");
    }
}

pub mod declarations {
    pub mod v1 {
        tonic::include_proto!("jifen.declarations.v1");
    }
}

pub mod evaluations {
    pub mod v1 {
        tonic::include_proto!("jifen.evaluations.v1");
    }
}

pub mod grading {
    pub mod v1 {
        tonic::include_proto!("jifen.grading.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("jifen.events.v1");
    }
}

//! Enum conversions between the domain vocabularies and their protobuf enums (used by the gRPC
//! layer and by the events). `*_UNSPECIFIED` (0) reads as "missing".

use crate::domain::{
    Category, Flag, Gender, GrantRole, OrgKind, SanctionKind, Status, UnitType, ValueError,
};
use jifen_proto::common::v1 as pb;

macro_rules! enum_map {
    ($to:ident, $from:ident, $domain:ident, $proto:ident { $($d:ident <=> $p:ident),+ $(,)? }) => {
        /// The protobuf value of a domain value.
        pub fn $to(v: $domain) -> pb::$proto {
            match v {
                $($domain::$d => pb::$proto::$p),+
            }
        }

        /// The domain value of a protobuf enum number; 0 (unspecified) is missing.
        pub fn $from(n: i32) -> Result<$domain, ValueError> {
            match pb::$proto::try_from(n) {
                $(Ok(pb::$proto::$p) => Ok($domain::$d),)+
                #[allow(unreachable_patterns)]
                Ok(_) if n == 0 => Err(ValueError::Missing),
                _ => Err(ValueError::OneOf($domain::NAMES)),
            }
        }
    };
}

enum_map!(org_kind_pb, org_kind, OrgKind, OrgKind {
    Committee <=> Committee,
    GeneralBranch <=> GeneralBranch,
    Branch <=> Branch,
    Group <=> Group,
});

enum_map!(unit_type_pb, unit_type, UnitType, UnitType {
    GovernmentOrgan <=> GovernmentOrgan,
    PublicInstitution <=> PublicInstitution,
    StateEnterprise <=> StateEnterprise,
    PrivateEnterprise <=> PrivateEnterprise,
    SocialOrganization <=> SocialOrganization,
    Rural <=> Rural,
    Community <=> Community,
    University <=> University,
    Other <=> Other,
});

enum_map!(category_pb, category, Category, MemberCategory {
    Full <=> Full,
    Probationary <=> Probationary,
});

enum_map!(status_pb, status, Status, MemberStatus {
    Active <=> Active,
    TransferredOut <=> TransferredOut,
    Deceased <=> Deceased,
    Expelled <=> Expelled,
    Left <=> Left,
});

enum_map!(flag_pb, flag, Flag, MemberFlag {
    Retired <=> Retired,
    ElderlyInfirm <=> ElderlyInfirm,
    Mobile <=> Mobile,
    Abroad <=> Abroad,
    Exempt <=> Exempt,
});

enum_map!(sanction_kind_pb, sanction_kind, SanctionKind, SanctionKind {
    Warning <=> Warning,
    SeriousWarning <=> SeriousWarning,
    RemovalFromPost <=> RemovalFromPost,
    Probation <=> Probation,
    Expulsion <=> Expulsion,
});

enum_map!(grant_role_pb, grant_role, GrantRole, Role {
    Admin <=> Admin,
    Secretary <=> Secretary,
});

/// Gender is optional: unspecified (0) is a value, not a missing field.
pub fn gender(n: i32) -> Result<Gender, ValueError> {
    match pb::Gender::try_from(n) {
        Ok(pb::Gender::Unspecified) => Ok(Gender::Unspecified),
        Ok(pb::Gender::Male) => Ok(Gender::Male),
        Ok(pb::Gender::Female) => Ok(Gender::Female),
        Err(_) => Err(ValueError::OneOf(Gender::NAMES)),
    }
}

pub fn gender_pb(g: Gender) -> pb::Gender {
    match g {
        Gender::Unspecified => pb::Gender::Unspecified,
        Gender::Male => pb::Gender::Male,
        Gender::Female => pb::Gender::Female,
    }
}

/// The protobuf role of a token role (`service` has none and reads as unspecified).
pub fn role_pb(r: jifen_platform::auth::RoleName) -> pb::Role {
    use jifen_platform::auth::RoleName;
    match r {
        RoleName::Admin => pb::Role::Admin,
        RoleName::Secretary => pb::Role::Secretary,
        RoleName::Member => pb::Role::Member,
        RoleName::Evaluator => pb::Role::Evaluator,
        RoleName::Service => pb::Role::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_unspecified_is_missing() {
        for k in OrgKind::ALL {
            assert_eq!(org_kind(org_kind_pb(*k) as i32).unwrap(), *k);
        }
        for s in Status::ALL {
            assert_eq!(status(status_pb(*s) as i32).unwrap(), *s);
        }
        for f in Flag::ALL {
            assert_eq!(flag(flag_pb(*f) as i32).unwrap(), *f);
        }
        assert_eq!(org_kind(0), Err(ValueError::Missing));
        assert!(matches!(org_kind(99), Err(ValueError::OneOf(_))));
        assert_eq!(
            grant_role(pb::Role::Member as i32),
            Err(ValueError::OneOf(GrantRole::NAMES))
        );
        assert_eq!(gender(0).unwrap(), Gender::Unspecified);
    }
}

//! sea-orm entities of the declarations tables (schema: `migrations/src/declarations/`). Enum
//! columns are text in their API spelling; the use-cases convert them to domain types.

pub mod standard {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "standards")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        pub document: Json,
        pub published_by: String,
        pub published_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod org_replica {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "org_replica")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub parent_id: Option<Uuid>,
        pub path: String,
        pub name: String,
        pub kind: String,
        pub unit_type: String,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod member_replica {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "member_replica")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub org_id: Uuid,
        pub org_path: String,
        pub name: String,
        pub category: String,
        pub status: String,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod declaration {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Deserialize)]
    #[sea_orm(table_name = "declarations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub member_id: Uuid,
        pub month: String,
        pub year: i32,
        pub org_id: Uuid,
        pub org_path: String,
        pub status: String,
        pub lines: Json,
        pub claimed_total: i32,
        pub approved_total: Option<i32>,
        pub submitted_at: Option<DateTimeUtc>,
        pub reviewed_at: Option<DateTimeUtc>,
        pub reviewer_id: Option<String>,
        pub comment: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod declaration_version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "declaration_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub declaration_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        pub state: Json,
        pub recorded_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod declaration_transition {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "declaration_transitions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub declaration_id: Uuid,
        pub version: i64,
        pub actor_id: String,
        pub actor_name: String,
        pub from_status: String,
        pub to_status: String,
        pub reason: String,
        pub at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod branch_record {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
    #[sea_orm(table_name = "branch_records")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub member_id: Uuid,
        pub org_id: Uuid,
        pub org_path: String,
        pub month: String,
        pub year: i32,
        pub item_code: String,
        pub category: String,
        pub kind: String,
        pub quantity: i32,
        pub points: i32,
        pub note: String,
        pub recorded_by: String,
        pub recorded_at: DateTimeUtc,
        pub revoked_by: Option<String>,
        pub revoked_at: Option<DateTimeUtc>,
        pub revoke_reason: Option<String>,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod reopening {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reopenings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub org_id: Uuid,
        pub org_path: String,
        pub month: String,
        pub until: DateTimeUtc,
        pub reason: String,
        pub reopened_by: String,
        pub reopened_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod evidence {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "evidence")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub reference: String,
        pub content_type: String,
        pub size: i64,
        pub stored_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod evidence_upload {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "evidence_uploads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub reference: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub uploaded_by: String,
        pub org_path: String,
        pub uploaded_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_log {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub at: DateTimeUtc,
        pub actor_id: String,
        pub action: String,
        pub subject_type: String,
        pub subject_id: String,
        pub detail: Json,
        pub reason: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

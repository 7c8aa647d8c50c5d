// Test models shared by the three dialects. scripts/generate.mjs expands this template
// into prisma/test/<dialect>/schema.prisma (datasource + generator) before `prisma generate`.

// ---- master models -------------------------------------------------------------
model Author {
  id           Int       @id @default(autoincrement())
  name         String
  birthDate    DateTime? @map("birth_date") {{DATE}}
  rating       Int       @default(0)
  balance      Decimal   @default(0) {{DECIMAL}}
  lastSeen     DateTime? @map("last_seen") {{DATETIME}}
  isActive     Boolean   @default(true) @map("is_active")
  profile      Json?
  nickname     String?
  externalId   String    @map("external_id")
  cqrsRevision Int       @default(0) @map("cqrs_revision")
  cqrsUpdated  DateTime  @updatedAt @map("cqrs_updated") {{DATETIME}}
  books        Book[]

  @@map("author")
}

model Book {
  id           Int       @id @default(autoincrement())
  title        String
  authorId     Int       @map("author_id")
  author       Author    @relation(fields: [authorId], references: [id])
  price        Decimal   @default(0) {{DECIMAL}}
  publishedAt  DateTime? @map("published_at") {{DATETIME}}
  isPublic     Boolean   @default(true) @map("is_public")
  cqrsRevision Int       @default(0) @map("cqrs_revision")
  cqrsUpdated  DateTime  @updatedAt @map("cqrs_updated") {{DATETIME}}

  @@map("book")
}

model Tag {
  id           String   @id @default(uuid()) {{UUID}}
  name         String
  cqrsRevision Int      @default(0) @map("cqrs_revision")
  cqrsUpdated  DateTime @updatedAt @map("cqrs_updated") {{DATETIME}}

  @@map("tag")
}

model Setting {
  key          String   @id {{KEY}}
  value        String
  cqrsRevision Int      @default(0) @map("cqrs_revision")
  cqrsUpdated  DateTime @updatedAt @map("cqrs_updated") {{DATETIME}}

  @@map("setting")
}

model Ledger {
  id           BigInt   @id @default(autoincrement())
  amount       BigInt
  note         String?
  cqrsRevision Int      @default(0) @map("cqrs_revision")
  cqrsUpdated  DateTime @updatedAt @map("cqrs_updated") {{DATETIME}}

  @@map("ledger")
}

// A model without the revision fields: cqrsMaster() must refuse it with a clear error.
model Plain {
  id   Int    @id @default(autoincrement())
  name String

  @@map("plain")
}

// ---- replica models --------------------------------------------------------------
model AuthorRef {
  id           Int       @id
  name         String
  birthDate    DateTime? @map("birth_date") {{DATE}}
  rating       Int       @default(0)
  balance      Decimal   @default(0) {{DECIMAL}}
  lastSeen     DateTime? @map("last_seen") {{DATETIME}}
  isActive     Boolean   @default(true) @map("is_active")
  profile      Json?
  nickname     String?
  externalId   String    @map("external_id")
  cqrsRevision Int       @map("cqrs_revision")
  cqrsUpdated  DateTime  @map("cqrs_updated") {{DATETIME}}

  @@map("author_ref")
}

model BookRef {
  id           Int       @id
  title        String
  authorId     Int       @map("author_id")
  price        Decimal   @default(0) {{DECIMAL}}
  publishedAt  DateTime? @map("published_at") {{DATETIME}}
  isPublic     Boolean   @default(true) @map("is_public")
  cqrsRevision Int       @map("cqrs_revision")
  cqrsUpdated  DateTime  @map("cqrs_updated") {{DATETIME}}

  @@map("book_ref")
}

model TagRef {
  id           String   @id {{UUID}}
  name         String
  cqrsRevision Int      @map("cqrs_revision")
  cqrsUpdated  DateTime @map("cqrs_updated") {{DATETIME}}

  @@map("tag_ref")
}

model SettingRef {
  key          String   @id {{KEY}}
  value        String
  cqrsRevision Int      @map("cqrs_revision")
  cqrsUpdated  DateTime @map("cqrs_updated") {{DATETIME}}

  @@map("setting_ref")
}

model LedgerRef {
  id           BigInt   @id
  amount       BigInt
  note         String?
  cqrsRevision Int      @map("cqrs_revision")
  cqrsUpdated  DateTime @map("cqrs_updated") {{DATETIME}}

  @@map("ledger_ref")
}

// Values at the edges of each column type (issue 9): master Edge, replica EdgeRef. Used by the
// exactness tests in integration/exact/; decimals at full precision and scale, both timestamp kinds.
model Edge {
  id           Int       @id @default(autoincrement())
  dec38        Decimal?  {{DEC38}}
  dec18        Decimal?  {{DEC18_8}}
  big          BigInt?
  dbl          Float?
  flt          Float?    {{REAL}}
  tstz         DateTime? {{DATETIME}}
  ts           DateTime? {{TIMESTAMP}}
  day          DateTime? {{DATE}}
  doc          Json
  docOpt       Json?     @map("doc_opt")
  bytes        Bytes?
  txt          String?   {{LONGTEXT}}
  cqrsRevision Int       @default(0) @map("cqrs_revision")
  cqrsUpdated  DateTime  @updatedAt @map("cqrs_updated") {{DATETIME}}

  @@map("edge")
}

model EdgeRef {
  id           Int       @id
  dec38        Decimal?  {{DEC38}}
  dec18        Decimal?  {{DEC18_8}}
  big          BigInt?
  dbl          Float?
  flt          Float?    {{REAL}}
  tstz         DateTime? {{DATETIME}}
  ts           DateTime? {{TIMESTAMP}}
  day          DateTime? {{DATE}}
  doc          Json
  docOpt       Json?     @map("doc_opt")
  bytes        Bytes?
  txt          String?   {{LONGTEXT}}
  cqrsRevision Int       @map("cqrs_revision")
  cqrsUpdated  DateTime  @map("cqrs_updated") {{DATETIME}}

  @@map("edge_ref")
}

/**
 * The research source: technique cards (`knowledge/*.md`, YAML front matter + markdown), indexed in
 * PostgreSQL full-text search and retrieved per campaign. A card's `suggests` are partial configs;
 * only those valid for the campaign's ModelSpec are ever used.
 *
 *   await indexKnowledge(pool, 'knowledge');            // → { indexed: 28, unchanged: 0 }
 *   await searchKnowledge(pool, 'feature crosses', 5);  // best matches first
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { InvalidInputError, parseOrThrow } from '../core/errors';

export const CARD_CATEGORIES = [
  'feature-crosses',
  'embeddings',
  'normalization',
  'optimization',
  'learning-rate',
  'regularization',
  'architecture',
  'features',
  'calibration',
  'efficiency',
  'process',
] as const;

const cardSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,79}$/, 'expected a kebab-case id (a-z, 0-9, -)'),
    title: z.string().min(1).max(200),
    category: z.enum(CARD_CATEGORIES),
    tags: z.array(z.string().min(1).max(40)).max(20).default([]),
    suggests: z
      .array(z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])))
      .max(8)
      .default([]),
    effect: z.string().min(1).max(1000),
    citation: z.string().min(1).max(1000),
  })
  .strict();

export type KnowledgeCard = z.output<typeof cardSchema> & { body: string; checksum: string };

/** Parses one card file's text; `source` names it in errors. */
export function parseCard(text: string, source: string): KnowledgeCard {
  const match = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?([\s\S]*)$/.exec(text);
  if (!match) {
    throw new InvalidInputError(
      `${source}: expected YAML front matter between two "---" lines at the top of the card`,
      ['frontMatter'],
    );
  }
  let front: unknown;
  try {
    front = parseYaml(match[1] as string);
  } catch (err) {
    throw new InvalidInputError(`${source}: front matter is not valid YAML: ${(err as Error).message}`, [
      'frontMatter',
    ]);
  }
  const card = parseOrThrow(cardSchema, front, `knowledge card ${source}`);
  const body = (match[2] as string).trim();
  if (body.length < 20)
    throw new InvalidInputError(`${source}: body: expected a description of the technique`, ['body']);
  if (body.length > 20_000)
    throw new InvalidInputError(`${source}: body: expected at most 20000 characters`, ['body']);
  return { ...card, body, checksum: createHash('sha256').update(text).digest('hex') };
}

/** Reads and validates every card in `dir` (README.md excluded); bad cards are returned apart, with why. */
export function readCards(dir: string): {
  cards: KnowledgeCard[];
  refused: { file: string; problem: string }[];
} {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.md') && f !== 'README.md')
    .sort();
  const cards: KnowledgeCard[] = [];
  const refused: { file: string; problem: string }[] = [];
  for (const f of files) {
    try {
      cards.push(readCard(path.join(dir, f)));
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      refused.push({ file: f, problem: err.message });
    }
  }
  return { cards, refused };
}

/** One card file; its id must be its file name. */
export function readCard(file: string): KnowledgeCard {
  const name = path.basename(file);
  const card = parseCard(readFileSync(file, 'utf8'), name);
  if (`${card.id}.md` !== name)
    throw new InvalidInputError(`${name}: id: expected "${name.replace(/\.md$/, '')}" (the file name)`, [
      'id',
    ]);
  return card;
}

export async function upsertCard(pool: Pool, card: KnowledgeCard): Promise<boolean> {
  const result = await pool.query(
    `INSERT INTO knowledge_cards (id, title, category, tags, suggests, effect, citation, body, checksum, document)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
       setweight(to_tsvector('english', $2), 'A') ||
       setweight(to_tsvector('english', array_to_string($4::text[], ' ') || ' ' || $3 || ' ' || $6), 'B') ||
       setweight(to_tsvector('english', $8), 'C'))
     ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, category = EXCLUDED.category, tags = EXCLUDED.tags,
       suggests = EXCLUDED.suggests, effect = EXCLUDED.effect, citation = EXCLUDED.citation, body = EXCLUDED.body,
       checksum = EXCLUDED.checksum, document = EXCLUDED.document, indexed_at = now()
     WHERE knowledge_cards.checksum IS DISTINCT FROM EXCLUDED.checksum`,
    [
      card.id,
      card.title,
      card.category,
      card.tags,
      JSON.stringify(card.suggests),
      card.effect,
      card.citation,
      card.body,
      card.checksum,
    ],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Indexes every valid card in `dir`; unchanged cards are left as they are. */
export async function indexKnowledge(
  pool: Pool,
  dir: string,
): Promise<{ indexed: number; unchanged: number; refused: { file: string; problem: string }[] }> {
  let indexed = 0;
  const { cards, refused } = readCards(dir);
  for (const card of cards) if (await upsertCard(pool, card)) indexed += 1;
  return { indexed, unchanged: cards.length - indexed, refused };
}

export interface RetrievedCard {
  id: string;
  title: string;
  category: string;
  suggests: Record<string, string | number | boolean>[];
  effect: string;
  citation: string;
  body: string;
  rank: number;
}

/**
 * Cards that best match `query`, best first. Words are OR-ed, so a long query of knob names and
 * goals still matches; a query with no indexed word finds nothing.
 */
export async function searchKnowledge(pool: Pool, query: string, limit: number): Promise<RetrievedCard[]> {
  const words = [...new Set(query.toLowerCase().match(/[a-z][a-z0-9]{2,}/g) ?? [])].slice(0, 60);
  const { rows } = await pool.query<RetrievedCard>(
    `SELECT id, title, category, suggests, effect, citation, body,
            ts_rank(document, to_tsquery('english', $1)) AS rank
     FROM knowledge_cards
     WHERE $1 <> '' AND document @@ to_tsquery('english', $1)
     ORDER BY rank DESC, id
     LIMIT $2`,
    [words.join(' | '), limit],
  );
  return rows.map((r) => ({ ...r, rank: Number(r.rank) }));
}

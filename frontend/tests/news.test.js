import { describe, expect, it } from 'vitest';
import { fetchSummary, newsPath, newsSymbols, safeLink, untrusted } from '../src/lib/news.js';

describe('news panel helpers', () => {
  it('reads untrusted text and nothing else', () => {
    expect(untrusted({ untrusted_text: '<script>x</script>' })).toBe('<script>x</script>');
    expect(untrusted(null)).toBe('');
    expect(untrusted('plain')).toBe('');
  });
  it('links only to http(s) addresses', () => {
    expect(safeLink({ untrusted_text: 'https://a.example/x?y=1' })).toBe('https://a.example/x?y=1');
    expect(safeLink({ untrusted_text: 'javascript:alert(1)' })).toBeNull();
    expect(safeLink({ untrusted_text: 'data:text/html,<b>x</b>' })).toBeNull();
    expect(safeLink({ untrusted_text: 'not a url' })).toBeNull();
    expect(safeLink(null)).toBeNull();
  });
  it('builds the query and the symbol list', () => {
    expect(newsPath('')).toBe('/api/news?limit=50');
    expect(newsPath('BTC', 20)).toBe('/api/news?limit=20&symbol=BTC');
    expect(newsSymbols(['ETH'], [{ symbols: ['BTC', 'ETH'] }, { symbols: [] }])).toEqual(['BTC', 'ETH']);
  });
  it('summarises a fetch', () => {
    const result = {
      reports: [
        { source: 'wire', read: 3, new: 1, error: null },
        { source: 'gone', read: 0, new: 0, error: 'HTTP 404' },
      ],
    };
    expect(fetchSummary(result)).toBe('wire: 3 read, 1 new · gone: HTTP 404');
  });
});

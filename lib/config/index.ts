export * from './cidr-presets';
export * from './load';
export * from './schema';

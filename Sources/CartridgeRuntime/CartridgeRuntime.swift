// The library a user embeds: cartridges, retrieval, composition, generation.
